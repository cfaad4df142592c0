"""The OpenAI routes for a remote model: the body the client sent (already validated by our wire types),
shaped for each upstream's dialect, sent with failover; the answer, or its stream, passed back with our model
id, its usage counted in our metrics and access log, and structured output checked against what was asked."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp

from edge_runtime.errors import WrongModelType
from edge_runtime.server.endpoint import json_response
from edge_runtime.server.errors import Family, stream_error_payload
from edge_runtime.server.event_stream import EventStreamResponse, sse_event
from edge_runtime.server.generations import until_disconnect
from edge_runtime.server.state import ServerState
from edge_runtime.upstreams.client import UpstreamClient
from edge_runtime.upstreams.config import RemoteModel
from edge_runtime.upstreams.errors import UpstreamBadOutput, UpstreamFailed
from edge_runtime.upstreams.output_check import check_output
from edge_runtime.upstreams.shaping import Endpoint, Structured, requested_structure, shape_request

PATHS: dict[Endpoint, str] = {"chat": "chat/completions", "completions": "completions", "embeddings": "embeddings"}
DONE = b"data: [DONE]\n\n"


class StreamCloser:
    """Closes what an upstream stream holds open (its response, its client's in-flight count)."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self._stack = stack

    async def close(self) -> None:
        await self._stack.aclose()


def body_shaper(raw: dict[str, Any], endpoint: Endpoint, model: RemoteModel, state: ServerState) -> Any:
    """Shape for every listed upstream now, so a parameter one of them refuses is a 400 before anything is sent."""
    bodies = {
        client.upstream.upstream_id: shape_request(
            raw, client.upstream.provider_type.dialect, endpoint, model.provider_model_id
        )[0]
        for client in state.upstreams.candidates(model)
    }
    return lambda client: bodies[client.upstream.upstream_id]


def record_usage(request: Request, state: ServerState, model_id: str, usage: Any) -> None:
    """The upstream's token counts in our metrics and access log (when it sent them)."""
    if not isinstance(usage, dict):
        return
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    scope_state = request.scope["state"]
    if isinstance(prompt, int):
        state.metrics.prompt_tokens.inc(model_id, amount=prompt)
        scope_state["prompt_tokens"] = scope_state.get("prompt_tokens", 0) + prompt
    if isinstance(completion, int):
        state.metrics.generated_tokens.inc(model_id, amount=completion)
        scope_state["completion_tokens"] = scope_state.get("completion_tokens", 0) + completion


def check_answer(answer: dict[str, Any], structured: Structured | None, endpoint: Endpoint) -> None:
    if structured is None:
        return
    for choice in answer.get("choices") or []:
        if endpoint == "chat":
            message = choice.get("message") or {}
            if message.get("tool_calls") or choice.get("finish_reason") == "length":
                continue
            text = message.get("content") or ""
        else:
            if choice.get("finish_reason") == "length":
                continue
            text = choice.get("text") or ""
        check_output(text, structured)


async def post_with_failover(
    request: Request, state: ServerState, model: RemoteModel, endpoint: Endpoint, raw: dict[str, Any]
) -> dict[str, Any]:
    """The upstream's JSON answer (the client leaving cancels the upstream request), checked and relabelled."""
    body_for = body_shaper(raw, endpoint, model, state)
    structured = requested_structure(raw) if endpoint != "embeddings" else None

    async def attempt(client: UpstreamClient) -> dict[str, Any]:
        return await client.post(PATHS[endpoint], body_for(client))

    answer = await until_disconnect(request, lambda: state.upstreams.first_answer(model, attempt))
    check_answer(answer, structured, endpoint)
    if "model" in answer:
        answer["model"] = model.model_id
    record_usage(request, state, model.model_id, answer.get("usage"))
    return answer


async def open_upstream_stream(
    request: Request, state: ServerState, model: RemoteModel, endpoint: Endpoint, raw: dict[str, Any]
) -> tuple[AsyncIterator[dict[str, Any]], StreamCloser]:
    """The parsed chunks of the first upstream that accepts the streamed request; an upstream error before
    its first byte is still an HTTP error (or the next upstream)."""
    body_for = body_shaper(raw, endpoint, model, state)
    stack = AsyncExitStack()
    try:
        lines = await until_disconnect(
            request, lambda: state.upstreams.open_stream(model, PATHS[endpoint], body_for, stack)
        )
    except BaseException:
        await stack.aclose()
        raise
    return _chunks(lines, request, state, model), StreamCloser(stack)


async def _chunks(
    lines: AsyncIterator[str], request: Request, state: ServerState, model: RemoteModel
) -> AsyncIterator[dict[str, Any]]:
    """Each `data:` payload as JSON, relabelled, its usage counted; the end is [DONE] (a stream that stops
    before it, or an error event from the upstream, is an UpstreamFailed)."""
    async for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise UpstreamFailed("the upstream sent an event that is not JSON") from None
        if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise UpstreamFailed(f"the upstream failed mid-stream: {str(message)[:300]}")
        if "model" in chunk:
            chunk["model"] = model.model_id
        record_usage(request, state, model.model_id, chunk.get("usage"))
        yield chunk
    raise UpstreamFailed("the upstream's stream ended before [DONE]")


async def _openai_sse(
    chunks: AsyncIterator[dict[str, Any]], structured: Structured | None, endpoint: Endpoint
) -> AsyncGenerator[bytes, None]:
    texts: dict[int, list[str]] = {}
    skip: set[int] = set()
    try:
        async for chunk in chunks:
            for choice in chunk.get("choices") or []:
                index = choice.get("index", 0)
                delta = (choice.get("delta") or {}) if endpoint == "chat" else {"content": choice.get("text")}
                if delta.get("tool_calls") or choice.get("finish_reason") == "length":
                    skip.add(index)
                texts.setdefault(index, []).append(delta.get("content") or "")
            yield sse_event(chunk)
        if structured is not None:
            for index, parts in sorted(texts.items()):
                if index not in skip:
                    check_output("".join(parts), structured)
    except (UpstreamFailed, UpstreamBadOutput) as error:
        yield sse_event(stream_error_payload(error, "openai"))
    yield DONE


def check_model_type(model: RemoteModel, endpoint: Endpoint) -> None:
    needed = "embedding" if endpoint == "embeddings" else "llm"
    if model.model_type != needed:
        raise WrongModelType(
            f"model '{model.model_id}' is an {model.model_type} model; this endpoint needs an {needed} model"
        )


async def openai_route(
    request: Request, state: ServerState, model: RemoteModel, endpoint: Endpoint, family: Family = "openai"
) -> ASGIApp:
    """`completions`, `chat/completions` or `embeddings` for a remote model, streamed or not."""
    request.state.model = model.model_id
    check_model_type(model, endpoint)
    raw = json.loads(await request.body())
    if raw.get("stream") and endpoint != "embeddings":
        structured = requested_structure(raw)
        chunks, closer = await open_upstream_stream(request, state, model, endpoint, raw)
        return EventStreamResponse(_openai_sse(chunks, structured, endpoint), closer)
    return json_response(await post_with_failover(request, state, model, endpoint, raw))
