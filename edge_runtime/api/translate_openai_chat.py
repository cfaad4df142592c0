"""OpenAI `/v1/chat/completions` requests to engine requests, and engine events back to chat completions and
`chat.completion.chunk`s (content, tool calls and logprobs)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from edge_runtime.api import openai_types as ot
from edge_runtime.api.call_splitter import (
    ArgumentsPiece,
    CallStarted,
    SplitCall,
    StreamingCallSplitter,
    StreamPiece,
    split_whole,
)
from edge_runtime.api.chat_generation import ChatDecoding, ChatGeneration, build_chat_generation
from edge_runtime.api.errors import ParameterError
from edge_runtime.api.generation import (
    ChoiceResult,
    GenerationResult,
    TextModel,
    chat_template,
    logprob_entries,
    openai_finish_reason,
    stop_list,
)
from edge_runtime.api.openai_sampling import guided_constraint, response_format_constraint, sampling_params
from edge_runtime.api.tool_use import (
    ToolUse,
    plan_tool_use,
)
from edge_runtime.api.translate_openai_completions import usage
from edge_runtime.engine.tool_calls import ToolSpec
from edge_runtime.engine.types import (
    ChoiceFinished,
    FinishReason,
    GenerationDone,
    GenerationEvent,
    TextPiece,
    TokenLogprob,
)

if TYPE_CHECKING:
    from edge_runtime.grammar import GrammarCompiler


def _text_of(content: str | list[ot.TextPart] | list[ot.ContentPart] | None, param: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content:
        if isinstance(part, ot.ImagePart):
            raise ParameterError(param, "this model reads text only; image parts are not supported")
        parts.append(part.text)
    return "".join(parts)


def _arguments(arguments: str) -> dict[str, Any] | str:
    """Templates format a call's arguments as an object; keep the text when it is not a JSON object."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    return parsed if isinstance(parsed, dict) else arguments


def chat_messages(messages: list[ot.ChatMessage]) -> list[dict[str, Any]]:
    """OpenAI messages in the Hugging Face form chat templates read (developer is the system role)."""
    converted: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages.{i}.content"
        if isinstance(message, (ot.SystemMessage, ot.DeveloperMessage)):
            converted.append({"role": "system", "content": _text_of(message.content, param)})
        elif isinstance(message, ot.UserMessage):
            converted.append({"role": "user", "content": _text_of(message.content, param)})
        elif isinstance(message, ot.AssistantMessage):
            # A refusal sent back in a retry loop is what the assistant said on that turn.
            said = _text_of(message.content, param) or message.refusal or ""
            entry: dict[str, Any] = {"role": "assistant", "content": said}
            calls = list(message.tool_calls or [])
            if message.function_call is not None:
                calls.append(ot.ToolCallRequestPart(id=f"call_{i}", function=message.function_call))
            if calls:
                entry["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.function.name, "arguments": _arguments(c.function.arguments)},
                    }
                    for c in calls
                ]
            converted.append(entry)
        elif isinstance(message, ot.ToolMessage):
            result = {"role": "tool", "tool_call_id": message.tool_call_id, "content": _text_of(message.content, param)}
            if message.name is not None:
                result["name"] = message.name
            converted.append(result)
        else:
            converted.append({"role": "tool", "name": message.name, "content": message.content or ""})
    return converted


def _chat_max_tokens(request: ot.ChatCompletionRequest) -> int | None:
    if (
        request.max_tokens is not None
        and request.max_completion_tokens is not None
        and request.max_tokens != request.max_completion_tokens
    ):
        raise ParameterError(
            "max_tokens", "contradicts max_completion_tokens; send only max_completion_tokens"
        )
    return request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens


def _tool_specs(request: ot.ChatCompletionRequest) -> list[ToolSpec]:
    if request.tools and request.functions:
        raise ParameterError("functions", "send either tools or the deprecated functions, not both")
    definitions = [t.function for t in request.tools or []] + list(request.functions or [])
    return [
        ToolSpec(
            d.name, d.description or "", d.parameters or {"type": "object", "properties": {}},
            lenient=d.strict is not True,
        )
        for d in definitions
    ]


def _tool_choice(request: ot.ChatCompletionRequest) -> str:
    if request.tool_choice is not None and request.function_call is not None:
        raise ParameterError("function_call", "send either tool_choice or the deprecated function_call")
    choice = request.tool_choice if request.tool_choice is not None else request.function_call
    if choice is None:
        return "auto"
    if isinstance(choice, ot.NamedToolChoice):
        return choice.function.name
    if isinstance(choice, ot.NamedFunction):
        return choice.name
    if choice != "none" and not (request.tools or request.functions):
        raise ParameterError("tool_choice", f"'{choice}' needs tools")
    return choice


def chat_to_generation(
    request: ot.ChatCompletionRequest,
    model: TextModel,
    grammars: GrammarCompiler,
    template_override: str | None = None,
) -> ChatGeneration:
    if request.top_logprobs is not None and not request.logprobs:
        raise ParameterError("top_logprobs", "requires logprobs: true")
    template = chat_template(model, template_override)
    use = plan_tool_use(
        _tool_specs(request),
        choice=_tool_choice(request),
        requested_format=None,
        parallel=request.parallel_tool_calls is not False,
        template=template,
        architecture=model.architecture,
        model_id=model.model_id,
    )
    guided = guided_constraint(request.guided_choice, request.guided_json, request.guided_grammar, grammars)
    formatted = response_format_constraint(request.response_format, grammars)
    if guided is not None and formatted is not None:
        raise ParameterError(
            "response_format", "cannot be combined with guided_choice/guided_json/guided_grammar"
        )
    spec = guided or formatted
    if use is not None and spec is not None:
        raise ParameterError("tools", "cannot be combined with response_format or guided decoding")
    decoding = ChatDecoding(
        sampling_params(request, model.n_vocab),
        _chat_max_tokens(request),
        stop_list(request.stop),
        n=request.n or 1,
        logprobs=(request.top_logprobs or 0) if request.logprobs else None,
    )
    return build_chat_generation(
        model, template, chat_messages(request.messages), decoding, use=use, spec=spec, grammars=grammars
    )


def chat_logprobs(entries: list[TokenLogprob | None], top_n: int) -> ot.ChoiceLogprobs:
    content = [
        ot.TokenLogprob(
            token=e.text,
            bytes=list(e.text.encode("utf-8")),
            logprob=e.logprob,
            top_logprobs=[
                ot.TopLogprob(token=t, bytes=list(t.encode("utf-8")), logprob=lp)
                for _, t, lp in e.top[:top_n]
            ],
        )
        for e in entries
        if e is not None
    ]
    return ot.ChoiceLogprobs(content=content)


def response_tool_call(call: SplitCall) -> ot.ResponseToolCall:
    """`arguments` is the text the model wrote: a cut-off call's is partial JSON, as OpenAI's own are."""
    return ot.ResponseToolCall(
        id=call.call_id, function=ot.ResponseFunctionCall(name=call.name, arguments=call.arguments)
    )


def chat_finish_reason(reason: FinishReason, calls: list[SplitCall]) -> ot.ChatFinishReason:
    """length whenever max_tokens cut the choice, calls or not (a call may be cut off); else tool_calls when
    the choice made calls."""
    if reason != "length" and calls:
        return "tool_calls"
    return openai_finish_reason(reason)


def _chat_choice(
    choice: ChoiceResult, request: ot.ChatCompletionRequest, use: ToolUse | None
) -> ot.ChatChoice:
    logprobs = chat_logprobs(choice.logprobs, request.top_logprobs or 0) if request.logprobs else None
    content, calls = split_whole(choice.text, use, cut_off=choice.finish_reason == "length")
    return ot.ChatChoice(
        finish_reason=chat_finish_reason(choice.finish_reason, calls),
        index=choice.index,
        logprobs=logprobs,
        message=ot.ChatCompletionMessage(
            content=content if content or not calls else None,
            tool_calls=[response_tool_call(c) for c in calls] or None,
        ),
    )


def chat_response(
    request: ot.ChatCompletionRequest, result: GenerationResult, use: ToolUse | None = None
) -> ot.ChatCompletion:
    return ot.ChatCompletion(
        choices=[_chat_choice(choice, request, use) for choice in result.choices],
        model=request.model,
        usage=usage(result.done),
    )


def _call_delta(position: int, piece: StreamPiece | SplitCall) -> ot.ChunkDelta:
    """OpenAI's tool-call deltas: the first has the index, id, type, name and empty arguments; the next ones
    carry only the index and more of the arguments text; a call sent whole has everything in one."""
    if isinstance(piece, ArgumentsPiece):
        call = ot.ChunkToolCall(index=position, function=ot.ChunkFunctionCall(arguments=piece.text))
    elif isinstance(piece, CallStarted):
        call = ot.ChunkToolCall(
            index=position, id=piece.call_id, type="function",
            function=ot.ChunkFunctionCall(name=piece.name, arguments=""),
        )
    elif isinstance(piece, SplitCall):
        call = ot.ChunkToolCall(
            index=position, id=piece.call_id, type="function",
            function=ot.ChunkFunctionCall(name=piece.name, arguments=piece.arguments),
        )
    else:
        raise TypeError(f"not a tool-call piece: {piece!r}")
    return ot.ChunkDelta(tool_calls=[call])


class ChatStream:
    """Engine events to `chat.completion.chunk`s: a role chunk per choice, content deltas, tool-call deltas by
    index as the model writes them (the call's id, type and name, then pieces of its arguments; python_list
    calls whole when the choice ends), a finish chunk per choice, and a usage chunk when
    stream_options.include_usage is set."""

    def __init__(self, request: ot.ChatCompletionRequest, use: ToolUse | None = None) -> None:
        self._request = request
        self._use = use
        self._splitters: dict[int, StreamingCallSplitter] = {}
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _chunk(
        self, choices: list[ot.ChunkChoice], usage_: ot.CompletionUsage | None = None
    ) -> ot.ChatCompletionChunk:
        return ot.ChatCompletionChunk(
            id=self.id, created=self.created, model=self._request.model, choices=choices, usage=usage_
        )

    def start(self) -> list[ot.ChatCompletionChunk]:
        return [
            self._chunk([ot.ChunkChoice(index=i, delta=ot.ChunkDelta(role="assistant", content=""))])
            for i in range(self._request.n or 1)
        ]

    def _splitter(self, index: int) -> StreamingCallSplitter | None:
        if self._use is None:
            return None
        return self._splitters.setdefault(index, StreamingCallSplitter(self._use))

    def chunks(self, event: GenerationEvent) -> Iterator[ot.ChatCompletionChunk]:
        if isinstance(event, TextPiece):
            splitter = self._splitter(event.index)
            pieces: list[StreamPiece] = splitter.feed(event.text) if splitter is not None else [event.text]
            text = "".join(piece for piece in pieces if isinstance(piece, str))
            logprobs = None
            if self._request.logprobs:
                logprobs = chat_logprobs(logprob_entries(event), self._request.top_logprobs or 0)
            if text or logprobs is not None:
                yield self._chunk(
                    [ot.ChunkChoice(index=event.index, delta=ot.ChunkDelta(content=text), logprobs=logprobs)]
                )
            for piece in pieces:
                if not isinstance(piece, str):
                    delta = _call_delta(piece.position, piece)
                    yield self._chunk([ot.ChunkChoice(index=event.index, delta=delta)])
        elif isinstance(event, ChoiceFinished):
            calls: list[SplitCall] = []
            splitter = self._splitter(event.index)
            if splitter is not None:
                rest, calls = splitter.finish(cut_off=event.finish_reason == "length")
                if rest:
                    yield self._chunk([ot.ChunkChoice(index=event.index, delta=ot.ChunkDelta(content=rest))])
                for position, call in enumerate(calls):
                    if not call.streamed:
                        yield self._chunk([ot.ChunkChoice(index=event.index, delta=_call_delta(position, call))])
            reason = chat_finish_reason(event.finish_reason, calls)
            yield self._chunk(
                [ot.ChunkChoice(index=event.index, delta=ot.ChunkDelta(), finish_reason=reason)]
            )
        elif (
            isinstance(event, GenerationDone)
            and self._request.stream_options is not None
            and self._request.stream_options.include_usage
        ):
            yield self._chunk([], usage(event))
