"""OpenAI routes (completions, chat/completions, embeddings, models), mounted under `/v1/openai/v1` and `/v1`."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from pydantic import BaseModel
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp

from edge_runtime.api import openai_types as ot
from edge_runtime.api import translate_openai_chat as to_chat
from edge_runtime.api import translate_openai_completions as to_completions
from edge_runtime.api import translate_openai_embeddings as to_embeddings
from edge_runtime.api.generation import TextModel
from edge_runtime.api.tool_use import ToolUse
from edge_runtime.engine.types import GenerationDone, GenerationEvent
from edge_runtime.server.catalog import PROVIDER_ID, CatalogModel
from edge_runtime.server.endpoint import endpoint, json_response, read_body, unenforced_headers
from edge_runtime.server.errors import stream_error_payload
from edge_runtime.server.event_stream import EventStreamResponse, sse_event
from edge_runtime.server.generations import Generation, Generations, admit, collect_while_connected
from edge_runtime.server.state import ServerState
from edge_runtime.upstreams import proxy
from edge_runtime.upstreams.config import RemoteModel

DONE = b"data: [DONE]\n\n"


def _data(chunk: BaseModel) -> bytes:
    return sse_event(chunk.model_dump(mode="json"))


@endpoint("openai", prompt_param="prompt")
async def completions(request: Request, state: ServerState) -> ASGIApp:
    body = await read_body(request, ot.CompletionRequest)
    request.state.user = body.user
    remote = state.upstreams.remote(body.model)
    if remote is not None:
        return await proxy.openai_route(request, state, remote, "completions")
    sequences = to_completions.check_choice_count(body)
    plan, first = await admit(
        request,
        state,
        body.model,
        lambda model, _served: to_completions.completion_to_generations(body, model, state.grammars),
        sequences,
    )
    model = first.model
    generations = Generations(
        first,
        [
            functools.partial(Generation, model, engine_request, state.metrics, request.scope["state"])
            for engine_request in plan.requests[1:]
        ],
    )
    headers = unenforced_headers(plan.unenforced)
    if body.stream:
        send, receive = anyio.create_memory_object_stream[tuple[int, GenerationEvent] | Exception]()
        return EventStreamResponse(
            _completion_sse(body, model, receive),
            generations,
            headers,
            background=lambda: generations.forward(send),
        )
    results = await collect_while_connected(request, generations, body.n or 1)
    return json_response(to_completions.completion_response(body, results, model), headers=headers)


async def _completion_sse(
    body: ot.CompletionRequest,
    model: TextModel,
    events: MemoryObjectReceiveStream[tuple[int, GenerationEvent] | Exception],
) -> AsyncGenerator[bytes, None]:
    """Every prompt's chunks as they come (choice indexes say which prompt), then usage if asked, then [DONE];
    a failure is an error event before [DONE]."""
    dones: list[GenerationDone] = []
    stream = to_completions.CompletionStream(body, model)
    async with events:
        async for item in events:
            if isinstance(item, Exception):
                yield sse_event(stream_error_payload(item, "openai"))
                yield DONE
                return
            prompt_index, event = item
            if isinstance(event, GenerationDone):
                dones.append(event)
            for chunk in stream.chunks(event, prompt_index):
                yield _data(chunk)
    if body.stream_options is not None and body.stream_options.include_usage:
        yield _data(stream.usage_chunk(dones))
    yield DONE


@endpoint("openai")
async def chat_completions(request: Request, state: ServerState) -> ASGIApp:
    body = await read_body(request, ot.ChatCompletionRequest)
    request.state.user = body.user
    remote = state.upstreams.remote(body.model)
    if remote is not None:
        return await proxy.openai_route(request, state, remote, "chat")
    plan, generation = await admit(
        request,
        state,
        body.model,
        lambda model, served: to_chat.chat_to_generation(
            body, model, state.grammars, served.entry.chat_template_override
        ),
        body.n or 1,
    )
    headers = unenforced_headers(plan.unenforced)
    if body.stream:
        return EventStreamResponse(
            _chat_sse(body, generation, plan.tool_use), Generations(generation), headers
        )
    (result,) = await collect_while_connected(request, Generations(generation), body.n or 1)
    return json_response(to_chat.chat_response(body, result, plan.tool_use), headers=headers)


async def _chat_sse(
    body: ot.ChatCompletionRequest, generation: Generation, use: ToolUse | None
) -> AsyncGenerator[bytes, None]:
    stream = to_chat.ChatStream(body, use)
    for chunk in stream.start():
        yield _data(chunk)
    async with aclosing(generation.events()) as events:
        try:
            async for event in events:
                for chunk in stream.chunks(event):
                    yield _data(chunk)
        except Exception as exc:  # noqa: BLE001 - reported in-stream: the status line has already gone out
            yield sse_event(stream_error_payload(exc, "openai"))
    yield DONE


@endpoint("openai", prompt_param="input")
async def embeddings(request: Request, state: ServerState) -> ASGIApp:
    body = await read_body(request, ot.EmbeddingRequest)
    request.state.model = body.model
    request.state.user = body.user
    remote = state.upstreams.remote(body.model)
    if remote is not None:
        return await proxy.openai_route(request, state, remote, "embeddings")
    texts = to_embeddings.embedding_texts(body)
    _, model = await state.model(body.model, "embedding")
    with model.in_use():
        vectors = await model.embed(texts, output_dimension=body.dimensions)
        prompt_tokens = await anyio.to_thread.run_sync(lambda: sum(len(model.tokenize(t)) for t in texts))
    request.state.prompt_tokens = prompt_tokens
    return json_response(to_embeddings.embedding_response(body, vectors, prompt_tokens))


def openai_model(served: CatalogModel, created: int) -> ot.OpenAIModel:
    return ot.OpenAIModel(id=served.identifier, created=created, owned_by=PROVIDER_ID)


def remote_openai_model(model: RemoteModel, created: int) -> ot.OpenAIModel:
    """A remote model is owned by its (first) upstream."""
    return ot.OpenAIModel(id=model.model_id, created=created, owned_by=model.upstreams[0])


@endpoint("openai")
async def list_models(request: Request, state: ServerState) -> ASGIApp:
    created = int(time.time())
    local = [openai_model(m, created) for m in state.catalog.list()]
    remote = [remote_openai_model(m, created) for m in state.upstreams.remote_models()]
    return json_response(ot.ModelList(data=local + remote))


@endpoint("openai")
async def get_model(request: Request, state: ServerState) -> ASGIApp:
    """An unknown id is OpenAI's 404 `model_not_found` naming the `model` parameter, as on every route."""
    remote = state.upstreams.remote(request.path_params["model_id"])
    if remote is not None:
        return json_response(remote_openai_model(remote, int(time.time())))
    served = state.catalog.resolve(request.path_params["model_id"])
    return json_response(openai_model(served, int(time.time())))


def routes(prefix: str, *, with_models: bool) -> list[Route]:
    """The inference routes under `prefix`; the models routes too unless another family serves that path."""
    inference = [
        Route(f"{prefix}/completions", completions, methods=["POST"]),
        Route(f"{prefix}/chat/completions", chat_completions, methods=["POST"]),
        Route(f"{prefix}/embeddings", embeddings, methods=["POST"]),
    ]
    if not with_models:
        return inference
    return inference + [
        Route(f"{prefix}/models", list_models, methods=["GET"]),
        Route(f"{prefix}/models/{{model_id:path}}", get_model, methods=["GET"]),
    ]
