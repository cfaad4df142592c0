"""Llama Stack native inference routes: completion, chat-completion, embeddings."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing

from pydantic import BaseModel
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp

from edge_runtime.api import native_types as nt
from edge_runtime.api import translate_native as tn
from edge_runtime.engine.types import GenerationEvent
from edge_runtime.server.endpoint import endpoint, json_response, read_body
from edge_runtime.server.errors import stream_error_payload
from edge_runtime.server.event_stream import EventStreamResponse, sse_event
from edge_runtime.server.generations import Generation, Generations, admit, collect_while_connected
from edge_runtime.server.state import ServerState
from edge_runtime.upstreams import native_proxy


def _logprobs_top_k(config: nt.LogProbConfig | None) -> int | None:
    return None if config is None else (config.top_k or 0)


async def native_sse(
    generation: Generation,
    chunks: Callable[[GenerationEvent], Iterator[BaseModel]],
    first: list[BaseModel] | None = None,
) -> AsyncGenerator[bytes, None]:
    """Native SSE: one `data:` event per chunk, no [DONE]; an error after the start is the last event."""
    for chunk in first or []:
        yield sse_event(chunk.model_dump(mode="json"))
    async with aclosing(generation.events()) as events:
        try:
            async for event in events:
                for chunk in chunks(event):
                    yield sse_event(chunk.model_dump(mode="json"))
        except Exception as exc:  # noqa: BLE001 - reported in-stream: the status line has already gone out
            yield sse_event(stream_error_payload(exc, "native"))


@endpoint("native")
async def completion(request: Request, state: ServerState) -> ASGIApp:
    body = await read_body(request, nt.CompletionRequest)
    remote = state.upstreams.remote(body.model_id)
    if remote is not None:
        return await native_proxy.completion(request, state, remote, body)
    _, generation = await admit(
        request,
        state,
        body.model_id,
        lambda model, _served: tn.completion_to_generation(body, model, state.grammars),
    )
    top_k = _logprobs_top_k(body.logprobs)
    if body.stream:
        return EventStreamResponse(
            native_sse(generation, tn.CompletionStream(top_k).chunks), Generations(generation)
        )
    (result,) = await collect_while_connected(request, Generations(generation), 1)
    return json_response(tn.completion_response(result, top_k))


@endpoint("native")
async def chat_completion(request: Request, state: ServerState) -> ASGIApp:
    body = await read_body(request, nt.ChatCompletionRequest)
    remote = state.upstreams.remote(body.model_id)
    if remote is not None:
        return await native_proxy.chat_completion(request, state, remote, body)
    plan, generation = await admit(
        request,
        state,
        body.model_id,
        lambda model, served: tn.chat_to_generation(
            body, model, state.grammars, served.entry.chat_template_override
        ),
    )
    top_k = _logprobs_top_k(body.logprobs)
    if body.stream:
        stream = tn.ChatStream(top_k, plan.tool_use)
        return EventStreamResponse(
            native_sse(generation, stream.chunks, first=[stream.start()]), Generations(generation)
        )
    (result,) = await collect_while_connected(request, Generations(generation), 1)
    return json_response(tn.chat_response(result, top_k, plan.tool_use))


@endpoint("native")
async def embeddings(request: Request, state: ServerState) -> ASGIApp:
    body = await read_body(request, nt.EmbeddingsRequest)
    remote = state.upstreams.remote(body.model_id)
    if remote is not None:
        return await native_proxy.embeddings(request, state, remote, body)
    request.state.model = body.model_id
    texts = tn.embedding_texts(body)
    _, model = await state.model(body.model_id, "embedding")
    vectors = await model.embed(
        texts, truncation=body.text_truncation or "none", output_dimension=body.output_dimension
    )
    return json_response(nt.EmbeddingsResponse(embeddings=vectors))


def routes() -> list[Route]:
    return [
        Route("/v1/inference/completion", completion, methods=["POST"]),
        Route("/v1/inference/chat-completion", chat_completion, methods=["POST"]),
        Route("/v1/inference/embeddings", embeddings, methods=["POST"]),
    ]
