"""Llama Stack native requests to engine requests, and engine events back to native responses and stream chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from edge_runtime.api import native_types as nt
from edge_runtime.api.call_splitter import SplitCall, StreamingCallSplitter, split_whole
from edge_runtime.api.errors import ParameterError
from edge_runtime.api.generation import (
    GenerationResult,
    GrammarSpec,
    TextModel,
    chat_template,
    constraint_factory,
    logprob_entries,
    native_stop_reason,
    prompt_tokens_from_text,
    render_chat,
    response_schema_grammar,
    stop_list,
)
from edge_runtime.api.tool_use import (
    ChatGeneration,
    ToolUse,
    plan_tool_use,
    prompt_messages,
    tool_constraint,
)
from edge_runtime.engine.tool_calls import ToolSpec
from edge_runtime.engine.types import (
    ChoiceFinished,
    FinishReason,
    GenerationDone,
    GenerationEvent,
    GenerationRequest,
    SamplingParams,
    TextPiece,
    TokenLogprob,
)

if TYPE_CHECKING:
    from edge_runtime.grammar import GrammarCompiler


def content_text(content: nt.InterleavedContent, *, param: str) -> str:
    """Flatten interleaved content to text; the runtime's models read text only, so an image is a 400."""
    if isinstance(content, str):
        return content
    items = content if isinstance(content, list) else [content]
    parts: list[str] = []
    for item in items:
        if isinstance(item, nt.ImageContentItem):
            raise ParameterError(param, "this model reads text only; image content is not supported")
        parts.append(item.text)
    return "".join(parts)


def sampling_from_native(params: nt.SamplingParams | None) -> tuple[SamplingParams, int | None, list[str]]:
    """The engine's sampling parameters, max_tokens (None = until the context is full) and stop strings."""
    params = params or nt.SamplingParams()
    strategy = params.strategy
    repetition_penalty = 1.0 if params.repetition_penalty is None else params.repetition_penalty
    if isinstance(strategy, nt.TopPSamplingStrategy):
        sampling = SamplingParams(
            temperature=strategy.temperature, top_p=strategy.top_p, repetition_penalty=repetition_penalty
        )
    elif isinstance(strategy, nt.TopKSamplingStrategy):
        sampling = SamplingParams(
            temperature=1.0, top_k=strategy.top_k, repetition_penalty=repetition_penalty
        )
    else:
        sampling = SamplingParams(temperature=0.0, repetition_penalty=repetition_penalty)
    max_tokens = params.max_tokens or None
    return sampling, max_tokens, stop_list(params.stop)


def constraint_from_response_format(
    response_format: nt.ResponseFormat | None, grammars: GrammarCompiler
) -> GrammarSpec | None:
    if response_format is None:
        return None
    if isinstance(response_format, nt.JsonSchemaResponseFormat):
        return GrammarSpec(response_schema_grammar(grammars, response_format.json_schema))
    bnf = response_format.bnf
    if isinstance(bnf, str):
        return GrammarSpec(grammars.gbnf(bnf))
    text = bnf.get("grammar")
    if not isinstance(text, str):
        raise ParameterError("response_format.bnf", 'expected {"grammar": "<GBNF text>"} or a GBNF string')
    return GrammarSpec(grammars.gbnf(text))


def _logprobs_count(config: nt.LogProbConfig | None) -> int | None:
    if config is None:
        return None
    return config.top_k or 0


def completion_to_generation(
    request: nt.CompletionRequest, model: TextModel, grammars: GrammarCompiler
) -> GenerationRequest:
    sampling, max_tokens, stop = sampling_from_native(request.sampling_params)
    prompt = prompt_tokens_from_text(
        model, content_text(request.content, param="content"), parse_special=False
    )
    spec = constraint_from_response_format(request.response_format, grammars)
    return GenerationRequest(
        prompt_tokens=prompt,
        sampling=sampling,
        max_tokens=max_tokens,
        stop=stop,
        logprobs=_logprobs_count(request.logprobs),
        constraint_factory=constraint_factory(spec, model),
    )


def _effective_tool_choice(request: nt.ChatCompletionRequest) -> str:
    config = request.tool_config
    configured = config.tool_choice if config is not None else None
    if request.tool_choice is not None and configured is not None and request.tool_choice != configured:
        raise ParameterError(
            "tool_choice", f"'{request.tool_choice}' contradicts tool_config.tool_choice '{configured}'"
        )
    if (
        request.tool_prompt_format is not None
        and config is not None
        and config.tool_prompt_format is not None
        and request.tool_prompt_format != config.tool_prompt_format
    ):
        raise ParameterError(
            "tool_prompt_format",
            f"'{request.tool_prompt_format}' contradicts tool_config.tool_prompt_format "
            f"'{config.tool_prompt_format}'",
        )
    choice = request.tool_choice or configured or "auto"
    names = {tool.tool_name for tool in request.tools or []}
    if choice not in ("auto", "required", "none") and choice not in names:
        raise ParameterError("tool_choice", f"tool '{choice}' is not among the request's tools")
    return choice


def chat_messages(messages: list[nt.Message]) -> list[dict[str, Any]]:
    """Native messages in the Hugging Face form chat templates read."""
    converted: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages.{i}.content"
        if isinstance(message, nt.UserMessage):
            text = content_text(message.content, param=param)
            if message.context is not None:
                text = f"{text}\n\n{content_text(message.context, param=f'messages.{i}.context')}"
            converted.append({"role": "user", "content": text})
        elif isinstance(message, nt.SystemMessage):
            converted.append({"role": "system", "content": content_text(message.content, param=param)})
        elif isinstance(message, nt.ToolResponseMessage):
            converted.append(
                {
                    "role": "tool",
                    "tool_call_id": message.call_id,
                    "content": content_text(message.content, param=param),
                }
            )
        else:
            entry: dict[str, Any] = {
                "role": "assistant",
                "content": content_text(message.content, param=param),
            }
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call.call_id,
                        "type": "function",
                        "function": {"name": call.tool_name, "arguments": call.arguments},
                    }
                    for call in message.tool_calls
                ]
            converted.append(entry)
    return converted


def _tool_specs(tools: list[nt.ToolDefinition] | None) -> list[ToolSpec]:
    """Llama Stack's parameter lists are closed: a call may pass only the parameters a tool defines."""
    specs = []
    for tool in tools or []:
        spec = ToolSpec.from_param_definitions(
            tool.tool_name,
            tool.description,
            {name: p.model_dump() for name, p in (tool.parameters or {}).items()},
        )
        specs.append(replace(spec, parameters={**spec.parameters, "additionalProperties": False}))
    return specs


def chat_to_generation(
    request: nt.ChatCompletionRequest,
    model: TextModel,
    grammars: GrammarCompiler,
    template_override: str | None = None,
) -> ChatGeneration:
    tool_choice = _effective_tool_choice(request)
    config = request.tool_config or nt.ToolConfig()
    template = chat_template(model, template_override)
    use = plan_tool_use(
        _tool_specs(request.tools),
        choice=tool_choice,
        requested_format=request.tool_prompt_format or config.tool_prompt_format,
        parallel=True,
        template=template,
        architecture=model.architecture,
        model_id=model.model_id,
    )
    if use is not None and use.fmt != "generic":
        # Llama 3's own formats (json, function_tag, python_list) make one call per turn, as Llama Stack reads them.
        use = replace(use, parallel=False)
    messages, tools = chat_messages(request.messages), None
    spec = constraint_from_response_format(request.response_format, grammars)
    if use is not None:
        if spec is not None:
            raise ParameterError("response_format", "cannot be combined with tools; send tool_choice 'none'")
        messages, tools = prompt_messages(messages, use, config.system_message_behavior or "append")
        spec = tool_constraint(use, grammars)
    sampling, max_tokens, stop = sampling_from_native(request.sampling_params)
    prompt, template_stops = render_chat(model, template, messages, tools)
    engine_request = GenerationRequest(
        prompt_tokens=prompt,
        sampling=sampling,
        max_tokens=max_tokens,
        stop=stop + [s for s in template_stops if s not in stop],
        logprobs=_logprobs_count(request.logprobs),
        constraint_factory=constraint_factory(spec, model),
    )
    return ChatGeneration(engine_request, use)


# ---- responses -----------------------------------------------------------------------------------------------


def metrics(done: GenerationDone) -> list[nt.MetricInResponse]:
    return [
        nt.MetricInResponse(metric="prompt_tokens", value=done.prompt_tokens),
        nt.MetricInResponse(metric="completion_tokens", value=done.completion_tokens),
        nt.MetricInResponse(metric="total_tokens", value=done.prompt_tokens + done.completion_tokens),
    ]


def token_logprobs(entries: list[TokenLogprob | None], top_k: int | None) -> list[nt.TokenLogProbs] | None:
    """`{"logprobs_by_token": {text: logprob}}` per token: the top-k alternatives, or the chosen token when k is 0."""
    if top_k is None:
        return None
    out: list[nt.TokenLogProbs] = []
    for entry in entries:
        if entry is None:
            continue
        if top_k > 0:
            by_token = {text: lp for _, text, lp in entry.top[:top_k]}
        else:
            by_token = {entry.text: entry.logprob}
        out.append(nt.TokenLogProbs(logprobs_by_token=by_token))
    return out


def completion_response(result: GenerationResult, top_k: int | None) -> nt.CompletionResponse:
    choice = result.choices[0]
    return nt.CompletionResponse(
        metrics=metrics(result.done),
        content=choice.text,
        stop_reason=native_stop_reason(choice.finish_reason),
        logprobs=token_logprobs(choice.logprobs, top_k),
    )


def native_tool_call(call: SplitCall) -> nt.ToolCall:
    """A call cut off by max_tokens keeps its partial arguments text as `arguments` (the wire type allows a
    string): it is a call, not content, and the stop reason out_of_tokens says it is incomplete."""
    if call.parsed is None:
        return nt.ToolCall(
            call_id=call.call_id, tool_name=call.name, arguments=call.arguments, arguments_json=call.arguments
        )
    arguments = call.parsed.arguments or {}
    return nt.ToolCall(
        call_id=call.call_id,
        tool_name=call.name,
        arguments=arguments,
        arguments_json=json.dumps(arguments, ensure_ascii=False),
    )


def chat_stop_reason(reason: FinishReason, calls: list[SplitCall]) -> nt.StopReason:
    """out_of_tokens whenever max_tokens cut the turn, calls or not (Llama Stack's own mapping); else
    end_of_message when the turn made calls."""
    if reason != "length" and calls:
        return "end_of_message"
    return native_stop_reason(reason)


def chat_response(
    result: GenerationResult, top_k: int | None, use: ToolUse | None = None
) -> nt.ChatCompletionResponse:
    choice = result.choices[0]
    content, calls = split_whole(choice.text, use, cut_off=choice.finish_reason == "length")
    return nt.ChatCompletionResponse(
        metrics=metrics(result.done),
        completion_message=nt.ResponseCompletionMessage(
            content=content,
            stop_reason=chat_stop_reason(choice.finish_reason, calls),
            tool_calls=[native_tool_call(c) for c in calls],
        ),
        logprobs=token_logprobs(choice.logprobs, top_k),
    )


class CompletionStream:
    """Engine events to `CompletionResponseStreamChunk`s: text deltas, then one empty delta with the stop
    reason and the metrics."""

    def __init__(self, top_k: int | None) -> None:
        self._top_k = top_k
        self._stop_reason: nt.StopReason = "out_of_tokens"

    def chunks(self, event: GenerationEvent) -> Iterator[nt.CompletionResponseStreamChunk]:
        if isinstance(event, TextPiece):
            if event.text or self._top_k is not None:
                yield nt.CompletionResponseStreamChunk(
                    delta=event.text, logprobs=token_logprobs(logprob_entries(event), self._top_k)
                )
        elif isinstance(event, ChoiceFinished):
            self._stop_reason = native_stop_reason(event.finish_reason)
        elif isinstance(event, GenerationDone):
            yield nt.CompletionResponseStreamChunk(
                delta="", stop_reason=self._stop_reason, metrics=metrics(event)
            )


class ChatStream:
    """Engine events to `ChatCompletionResponseStreamChunk`s: start, progress text deltas, one progress
    tool_call delta per call (succeeded, or failed with the raw text), complete."""

    def __init__(self, top_k: int | None, use: ToolUse | None = None) -> None:
        self._top_k = top_k
        self._stop_reason: nt.StopReason = "out_of_tokens"
        self._splitter = StreamingCallSplitter(use) if use is not None else None

    def start(self) -> nt.ChatCompletionResponseStreamChunk:
        return self._event("start", nt.TextDelta(text=""))

    @staticmethod
    def _event(
        kind: Literal["start", "progress", "complete"],
        delta: nt.TextDelta | nt.ToolCallDelta,
        logprobs: list[nt.TokenLogProbs] | None = None,
    ) -> nt.ChatCompletionResponseStreamChunk:
        return nt.ChatCompletionResponseStreamChunk(
            event=nt.ChatCompletionResponseEvent(event_type=kind, delta=delta, logprobs=logprobs)
        )

    def chunks(self, event: GenerationEvent) -> Iterator[nt.ChatCompletionResponseStreamChunk]:
        if isinstance(event, TextPiece):
            if self._splitter is not None:
                text = "".join(p for p in self._splitter.feed(event.text) if isinstance(p, str))
            else:
                text = event.text
            if text or self._top_k is not None:
                logprobs = token_logprobs(logprob_entries(event), self._top_k)
                yield self._event("progress", nt.TextDelta(text=text), logprobs)
        elif isinstance(event, ChoiceFinished):
            self._stop_reason = native_stop_reason(event.finish_reason)
            if self._splitter is not None:
                yield from self._tool_call_chunks(self._splitter, event.finish_reason)
        elif isinstance(event, GenerationDone):
            yield nt.ChatCompletionResponseStreamChunk(
                metrics=metrics(event),
                event=nt.ChatCompletionResponseEvent(
                    event_type="complete", delta=nt.TextDelta(text=""), stop_reason=self._stop_reason
                ),
            )

    def _tool_call_chunks(
        self, splitter: StreamingCallSplitter, reason: FinishReason
    ) -> Iterator[nt.ChatCompletionResponseStreamChunk]:
        """Calls go out whole when the turn ends: succeeded, or failed for a call cut off by max_tokens,
        whose payload is the call with its partial arguments text."""
        rest, calls = splitter.finish(cut_off=reason == "length")
        if rest:
            yield self._event("progress", nt.TextDelta(text=rest))
        self._stop_reason = chat_stop_reason(reason, calls)
        for call in calls:
            status: Literal["failed", "succeeded"] = "failed" if call.failed else "succeeded"
            yield self._event("progress", nt.ToolCallDelta(tool_call=native_tool_call(call), parse_status=status))


def embedding_texts(request: nt.EmbeddingsRequest) -> list[str]:
    if request.task_type is not None:
        raise ParameterError("task_type", "the runtime's embedding models take no task type")
    texts: list[str] = []
    for i, item in enumerate(request.contents):
        texts.append(item if isinstance(item, str) else content_text(item, param=f"contents.{i}"))
    if not texts:
        raise ParameterError("contents", "at least one text is required")
    return texts
