"""The native routes for a remote model: a Llama Stack request as the OpenAI chat, completions or embeddings
request the upstream speaks (then shaped for its dialect like any OpenAI request), and the answer back as
native responses and stream events, in the native order: start, progress (text, then each tool call), complete."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from edge_runtime.api import native_types as nt
from edge_runtime.api import translate_native as tn
from edge_runtime.api.errors import ParameterError
from edge_runtime.engine.tool_calls import ToolSpec
from edge_runtime.server.errors import stream_error_payload
from edge_runtime.server.event_stream import sse_event
from edge_runtime.upstreams.errors import UpstreamBadOutput, UpstreamFailed
from edge_runtime.upstreams.output_check import check_output
from edge_runtime.upstreams.shaping import Structured

STOP_REASONS: dict[str | None, nt.StopReason] = {
    "stop": "end_of_turn",
    "length": "out_of_tokens",
    "tool_calls": "end_of_message",
    "function_call": "end_of_message",
}


def _sampling(params: nt.SamplingParams | None) -> dict[str, Any]:
    params = params or nt.SamplingParams()
    strategy = params.strategy
    out: dict[str, Any] = {}
    if isinstance(strategy, nt.TopPSamplingStrategy):
        out.update(temperature=strategy.temperature, top_p=strategy.top_p)
    elif isinstance(strategy, nt.TopKSamplingStrategy):
        out.update(temperature=1.0, top_k=strategy.top_k)
    else:
        out["temperature"] = 0.0
    if params.max_tokens:
        out["max_tokens"] = params.max_tokens
    if params.repetition_penalty not in (None, 1.0):
        out["repetition_penalty"] = params.repetition_penalty
    if params.stop:
        out["stop"] = params.stop
    return out


def _logprobs(config: nt.LogProbConfig | None, endpoint: Literal["chat", "completions"]) -> dict[str, Any]:
    if config is None:
        return {}
    top_k = config.top_k or 0
    if endpoint == "completions":
        return {"logprobs": top_k}
    return {"logprobs": True, "top_logprobs": top_k}


def _response_format(response_format: nt.ResponseFormat | None) -> dict[str, Any]:
    if response_format is None:
        return {}
    if isinstance(response_format, nt.JsonSchemaResponseFormat):
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": "response", "schema": response_format.json_schema}}}
    bnf = response_format.bnf
    text = bnf if isinstance(bnf, str) else bnf.get("grammar")
    if not isinstance(text, str):
        raise ParameterError("response_format.bnf", 'expected {"grammar": "<GBNF text>"} or a GBNF string')
    return {"guided_grammar": text}


def _stream(stream: bool | None) -> dict[str, Any]:
    return {"stream": True, "stream_options": {"include_usage": True}} if stream else {}


def completion_body(request: nt.CompletionRequest) -> dict[str, Any]:
    return {
        "model": request.model_id,
        "prompt": tn.content_text(request.content, param="content"),
        **_sampling(request.sampling_params),
        **_logprobs(request.logprobs, "completions"),
        **_response_format(request.response_format),
        **_stream(request.stream),
    }


def _openai_messages(messages: list[nt.Message]) -> list[dict[str, Any]]:
    converted = tn.chat_messages(messages)
    for message in converted:
        for call in message.get("tool_calls") or []:
            arguments = call["function"]["arguments"]
            if not isinstance(arguments, str):
                call["function"]["arguments"] = json.dumps(arguments, ensure_ascii=False)
    return converted


def chat_body(request: nt.ChatCompletionRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model_id,
        "messages": _openai_messages(request.messages),
        **_sampling(request.sampling_params),
        **_logprobs(request.logprobs, "chat"),
        **_response_format(request.response_format),
        **_stream(request.stream),
    }
    if request.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": spec.name, "description": spec.description or "",
                                              "parameters": spec.parameters}}
            for spec in (
                ToolSpec.from_param_definitions(
                    tool.tool_name, tool.description,
                    {name: p.model_dump() for name, p in (tool.parameters or {}).items()},
                )
                for tool in request.tools
            )
        ]
        choice = request.tool_choice or (request.tool_config.tool_choice if request.tool_config else None)
        if choice in ("auto", "required", "none"):
            body["tool_choice"] = choice
        elif choice:
            body["tool_choice"] = {"type": "function", "function": {"name": choice}}
    return body


def embeddings_body(request: nt.EmbeddingsRequest) -> dict[str, Any]:
    if request.text_truncation not in (None, "none"):
        raise ParameterError("text_truncation", "a remote model's texts are sent whole; use 'none'")
    body: dict[str, Any] = {"model": request.model_id, "input": tn.embedding_texts(request)}
    if request.output_dimension is not None:
        body["dimensions"] = request.output_dimension
    return body


def metrics(usage: Any) -> list[nt.MetricInResponse]:
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return [
        nt.MetricInResponse(metric="prompt_tokens", value=prompt),
        nt.MetricInResponse(metric="completion_tokens", value=completion),
        nt.MetricInResponse(metric="total_tokens", value=prompt + completion),
    ]


def chat_logprobs(logprobs: Any, top_k: int | None) -> list[nt.TokenLogProbs] | None:
    """OpenAI's per-token logprobs as native `logprobs_by_token`: the top-k, or the chosen token when k is 0."""
    if top_k is None:
        return None
    entries = (logprobs or {}).get("content") or []
    out = []
    for entry in entries:
        top = entry.get("top_logprobs") or []
        by_token = {t["token"]: t["logprob"] for t in top[:top_k]} if top_k > 0 and top else {}
        out.append(nt.TokenLogProbs(logprobs_by_token=by_token or {entry["token"]: entry["logprob"]}))
    return out


def completion_logprobs(logprobs: Any, top_k: int | None) -> list[nt.TokenLogProbs] | None:
    if top_k is None:
        return None
    logprobs = logprobs or {}
    tokens, values = logprobs.get("tokens") or [], logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    out = []
    for token, value, top in zip(tokens, values, tops):
        by_token = dict(list(top.items())[:top_k]) if top_k > 0 and top else {token: value}
        out.append(nt.TokenLogProbs(logprobs_by_token=by_token))
    return out


def tool_call(call_id: str, name: str, arguments: str, *, complete: bool) -> tuple[nt.ToolCall, bool]:
    """A native call and whether it parsed: arguments that are not a JSON object stay the raw string."""
    try:
        parsed = json.loads(arguments) if complete else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return nt.ToolCall(call_id=call_id, tool_name=name, arguments=parsed,
                           arguments_json=json.dumps(parsed, ensure_ascii=False)), True
    return nt.ToolCall(call_id=call_id, tool_name=name, arguments=arguments, arguments_json=arguments), False


def chat_response(answer: dict[str, Any], top_k: int | None) -> nt.ChatCompletionResponse:
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    reason = choice.get("finish_reason")
    calls = [
        tool_call(c.get("id") or f"call_{i}", c["function"]["name"], c["function"].get("arguments") or "",
                  complete=reason != "length")[0]
        for i, c in enumerate(message.get("tool_calls") or [])
    ]
    stop = STOP_REASONS.get(reason, "end_of_turn")
    if calls and reason != "length":
        stop = "end_of_message"
    return nt.ChatCompletionResponse(
        metrics=metrics(answer.get("usage")),
        completion_message=nt.ResponseCompletionMessage(
            content=message.get("content") or "", stop_reason=stop, tool_calls=calls
        ),
        logprobs=chat_logprobs(choice.get("logprobs"), top_k),
    )


def completion_response(answer: dict[str, Any], top_k: int | None) -> nt.CompletionResponse:
    choice = (answer.get("choices") or [{}])[0]
    return nt.CompletionResponse(
        metrics=metrics(answer.get("usage")),
        content=choice.get("text") or "",
        stop_reason=STOP_REASONS.get(choice.get("finish_reason"), "end_of_turn"),
        logprobs=completion_logprobs(choice.get("logprobs"), top_k),
    )


def embeddings_response(answer: dict[str, Any]) -> nt.EmbeddingsResponse:
    data = sorted(answer.get("data") or [], key=lambda item: item.get("index", 0))
    return nt.EmbeddingsResponse(embeddings=[item["embedding"] for item in data])


@dataclass
class _PendingCall:
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


def _data(chunk: BaseModel) -> bytes:
    return sse_event(chunk.model_dump(mode="json"))


def _event(
    kind: Literal["start", "progress", "complete"], delta: nt.TextDelta | nt.ToolCallDelta,
    logprobs: list[nt.TokenLogProbs] | None = None, stop_reason: nt.StopReason | None = None,
    usage: Any = None,
) -> bytes:
    return _data(nt.ChatCompletionResponseStreamChunk(
        metrics=metrics(usage) if kind == "complete" else None,
        event=nt.ChatCompletionResponseEvent(event_type=kind, delta=delta, logprobs=logprobs, stop_reason=stop_reason),
    ))


async def chat_sse(
    chunks: AsyncIterator[dict[str, Any]], top_k: int | None, structured: Structured | None
) -> AsyncGenerator[bytes, None]:
    """start; a progress event per text delta; each tool call whole when the turn ends; complete with the stop
    reason and the usage. An upstream failure (or output off its schema) is the last event."""
    yield _event("start", nt.TextDelta(text=""))
    calls: dict[int, _PendingCall] = {}
    reason: str | None = None
    usage: Any = None
    text: list[str] = []
    try:
        async for chunk in chunks:
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                for part in delta.get("tool_calls") or []:
                    pending = calls.setdefault(part.get("index", 0), _PendingCall())
                    pending.call_id = part.get("id") or pending.call_id
                    function = part.get("function") or {}
                    pending.name = function.get("name") or pending.name
                    pending.arguments.append(function.get("arguments") or "")
                content = delta.get("content")
                logprobs = chat_logprobs(choice.get("logprobs"), top_k)
                if content or logprobs:
                    text.append(content or "")
                    yield _event("progress", nt.TextDelta(text=content or ""), logprobs)
                reason = choice.get("finish_reason") or reason
        for index, pending in sorted(calls.items()):
            call, parsed = tool_call(pending.call_id or f"call_{index}", pending.name, "".join(pending.arguments),
                                     complete=reason != "length")
            yield _event("progress", nt.ToolCallDelta(tool_call=call, parse_status="succeeded" if parsed else "failed"))
        if structured is not None and not calls and reason != "length":
            check_output("".join(text), structured)
    except (UpstreamFailed, UpstreamBadOutput) as error:
        yield sse_event(stream_error_payload(error, "native"))
        return
    stop = STOP_REASONS.get(reason, "end_of_turn")
    if calls and reason != "length":
        stop = "end_of_message"
    yield _event("complete", nt.TextDelta(text=""), stop_reason=stop, usage=usage)


async def completion_sse(
    chunks: AsyncIterator[dict[str, Any]], top_k: int | None, structured: Structured | None
) -> AsyncGenerator[bytes, None]:
    """A chunk per text delta, then one empty delta with the stop reason and the metrics."""
    reason: str | None = None
    usage: Any = None
    text: list[str] = []
    try:
        async for chunk in chunks:
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                delta = choice.get("text") or ""
                logprobs = completion_logprobs(choice.get("logprobs"), top_k)
                if delta or logprobs:
                    text.append(delta)
                    yield _data(nt.CompletionResponseStreamChunk(delta=delta, logprobs=logprobs))
                reason = choice.get("finish_reason") or reason
        if structured is not None and reason != "length":
            check_output("".join(text), structured)
    except (UpstreamFailed, UpstreamBadOutput) as error:
        yield sse_event(stream_error_payload(error, "native"))
        return
    yield _data(nt.CompletionResponseStreamChunk(
        delta="", stop_reason=STOP_REASONS.get(reason, "end_of_turn"), metrics=metrics(usage)
    ))
