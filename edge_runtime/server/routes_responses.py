"""The OpenAI Responses API: `POST /responses`, `GET` and `DELETE /responses/{id}`, under `/v1/openai/v1` and
`/v1`. Generation goes through the chat route's translation, admission and disconnect handling."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp

from edge_runtime.api import responses_types as rt
from edge_runtime.api import translate_responses as tr
from edge_runtime.api.errors import ParameterError
from edge_runtime.server.endpoint import endpoint, json_response, read_body, unenforced_headers
from edge_runtime.server.errors import ResourceNotFound, stream_error_payload
from edge_runtime.server.event_stream import EventStreamResponse
from edge_runtime.server.generations import Generation, Generations, admit, collect_while_connected
from edge_runtime.server.response_store import ResponseStore, StoredResponse
from edge_runtime.server.state import ServerState


def response_store(request: Request) -> ResponseStore:
    """Opened by the app's lifespan beside the model store."""
    store: ResponseStore = request.app.state.responses
    return store


def named_event(event: dict[str, Any]) -> bytes:
    """One SSE event as the Responses API sends them: `event: <type>` then `data: <json>`."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


async def _conversation(store: ResponseStore, body: rt.ResponseCreateRequest) -> list[rt.InputItem]:
    """The stored turns `previous_response_id` continues (instructions are not carried over), then this input."""
    items = tr.input_items(body)
    if body.previous_response_id is None:
        return items
    previous = await store.get(body.previous_response_id)
    if previous is None:
        raise ParameterError(
            "previous_response_id",
            f"no stored response '{body.previous_response_id}' (never stored with store: true, deleted, or "
            "past the retention limit)",
        )
    return tr.history_items(previous.response, previous.conversation) + items


@endpoint("openai")
async def create_response(request: Request, state: ServerState) -> ASGIApp:
    body = await read_body(request, rt.ResponseCreateRequest)
    request.state.user = body.user or body.safety_identifier
    store = response_store(request)
    items = await _conversation(store, body)
    plan, generation = await admit(
        request,
        state,
        body.model,
        lambda model, served: tr.responses_to_generation(
            body, items, model, state.grammars, served.entry.chat_template_override
        ),
    )
    headers = unenforced_headers(plan.unenforced)
    shell = tr.response_shell(body)
    keep = store if shell.store else None
    if body.stream:
        events = tr.ResponseEvents(shell, plan.tool_use)
        return EventStreamResponse(
            _response_sse(events, generation, keep, items), Generations(generation), headers
        )
    (result,) = await collect_while_connected(request, Generations(generation), 1)
    response = tr.response_object(shell, result, plan.tool_use)
    if keep is not None:
        await keep.save(StoredResponse(response, items))
    return json_response(response, headers=headers)


async def _response_sse(
    events: tr.ResponseEvents, generation: Generation, keep: ResponseStore | None, items: list[rt.InputItem]
) -> AsyncGenerator[bytes, None]:
    """The stream; a stored response is saved before its final event, so a client may fetch it at once."""
    for event in events.start():
        yield named_event(event)
    async with aclosing(generation.events()) as stream:
        try:
            async for engine_event in stream:
                for event in events.events(engine_event):
                    if events.final is not None and keep is not None:
                        await keep.save(StoredResponse(events.final, items))
                        keep = None
                    yield named_event(event)
        except Exception as exc:  # noqa: BLE001 - reported in-stream: the status line has already gone out
            for event in events.failure(stream_error_payload(exc, "openai")):
                yield named_event(event)


@endpoint("openai")
async def get_response(request: Request, state: ServerState) -> ASGIApp:
    response_id = request.path_params["response_id"]
    stored = await response_store(request).get(response_id)
    if stored is None:
        raise ResourceNotFound(f"no stored response '{response_id}'")
    return json_response(stored.response)


@endpoint("openai")
async def delete_response(request: Request, state: ServerState) -> ASGIApp:
    response_id = request.path_params["response_id"]
    if not await response_store(request).delete(response_id):
        raise ResourceNotFound(f"no stored response '{response_id}'")
    return json_response(rt.ResponseDeleted(id=response_id))


def routes(prefix: str) -> list[Route]:
    return [
        Route(f"{prefix}/responses", create_response, methods=["POST"]),
        Route(f"{prefix}/responses/{{response_id}}", get_response, methods=["GET"]),
        Route(f"{prefix}/responses/{{response_id}}", delete_response, methods=["DELETE"]),
    ]
