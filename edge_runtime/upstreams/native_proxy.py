"""The native routes' handlers for a remote model: translate (native.py), send with failover (proxy.py), answer
in the native shape. A parameter the upstream's dialect refuses is named as the native request wrote it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp

from edge_runtime.api import native_types as nt
from edge_runtime.api.errors import ParameterError
from edge_runtime.server.endpoint import json_response
from edge_runtime.server.event_stream import EventStreamResponse
from edge_runtime.server.state import ServerState
from edge_runtime.upstreams import native
from edge_runtime.upstreams.config import RemoteModel
from edge_runtime.upstreams.proxy import check_model_type, open_upstream_stream, post_with_failover
from edge_runtime.upstreams.shaping import Endpoint, requested_structure

NATIVE_PARAMS = {
    "top_k": "sampling_params.strategy",
    "temperature": "sampling_params.strategy",
    "top_p": "sampling_params.strategy",
    "repetition_penalty": "sampling_params.repetition_penalty",
    "max_tokens": "sampling_params.max_tokens",
    "stop": "sampling_params.stop",
    "logprobs": "logprobs",
    "top_logprobs": "logprobs.top_k",
    "guided_grammar": "response_format",
    "response_format.json_schema": "response_format",
    "dimensions": "output_dimension",
    "stream_options": "stream",
    "prompt": "content",
    "input": "contents",
}


def _native_param(error: ParameterError) -> ParameterError:
    param = NATIVE_PARAMS.get(error.param, error.param)
    return ParameterError(param, error.reason.replace(f"'{error.param}'", f"'{param}'"))


async def _answer(
    request: Request, state: ServerState, model: RemoteModel, endpoint: Endpoint, body: dict[str, Any],
    whole: Callable[[dict[str, Any]], Any], streamed: Callable[..., Any] | None,
) -> ASGIApp:
    request.state.model = model.model_id
    check_model_type(model, endpoint)
    try:
        if streamed is not None and body.get("stream"):
            structured = requested_structure(body)
            chunks, closer = await open_upstream_stream(request, state, model, endpoint, body)
            return EventStreamResponse(streamed(chunks, structured), closer)
        return json_response(whole(await post_with_failover(request, state, model, endpoint, body)))
    except ParameterError as error:
        raise _native_param(error) from None


async def completion(request: Request, state: ServerState, model: RemoteModel, req: nt.CompletionRequest) -> ASGIApp:
    top_k = None if req.logprobs is None else (req.logprobs.top_k or 0)
    return await _answer(
        request, state, model, "completions", native.completion_body(req),
        lambda answer: native.completion_response(answer, top_k),
        lambda chunks, structured: native.completion_sse(chunks, top_k, structured),
    )


async def chat_completion(
    request: Request, state: ServerState, model: RemoteModel, req: nt.ChatCompletionRequest
) -> ASGIApp:
    top_k = None if req.logprobs is None else (req.logprobs.top_k or 0)
    return await _answer(
        request, state, model, "chat", native.chat_body(req),
        lambda answer: native.chat_response(answer, top_k),
        lambda chunks, structured: native.chat_sse(chunks, top_k, structured),
    )


async def embeddings(request: Request, state: ServerState, model: RemoteModel, req: nt.EmbeddingsRequest) -> ASGIApp:
    return await _answer(
        request, state, model, "embeddings", native.embeddings_body(req), native.embeddings_response, None
    )
