"""OpenAI requests to engine requests, and engine events back to OpenAI responses and stream chunks."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_runtime.api import openai_types as ot
from edge_runtime.api.call_splitter import (
    ArgumentsPiece,
    CallStarted,
    SplitCall,
    StreamingCallSplitter,
    StreamPiece,
    split_whole,
)
from edge_runtime.api.errors import ParameterError
from edge_runtime.api.generation import (
    ChoiceResult,
    CompletionPlan,
    GenerationResult,
    GrammarSpec,
    TextModel,
    chat_template,
    constraint_factory,
    logprob_entries,
    openai_finish_reason,
    parse_logit_bias,
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
    PromptScored,
    SamplingParams,
    TextPiece,
    TokenLogprob,
)

if TYPE_CHECKING:
    from edge_runtime.grammar import GrammarCompiler


def _sampling(request: ot.CompletionRequest | ot.ChatCompletionRequest, n_vocab: int) -> SamplingParams:
    """OpenAI's defaults: temperature 1, top_p 1, no penalties; vLLM's top_k (-1 or 0: off), min_p and
    repetition_penalty (1: off) as vLLM and llama-server read them."""
    return SamplingParams(
        temperature=1.0 if request.temperature is None else request.temperature,
        top_k=max(request.top_k or 0, 0),
        top_p=1.0 if request.top_p is None else request.top_p,
        min_p=request.min_p or 0.0,
        repetition_penalty=1.0 if request.repetition_penalty is None else request.repetition_penalty,
        frequency_penalty=request.frequency_penalty or 0.0,
        presence_penalty=request.presence_penalty or 0.0,
        logit_bias=parse_logit_bias(request.logit_bias, n_vocab),
        seed=request.seed,
    )


def _guided_constraint(
    guided_choice: list[str] | None,
    guided_json: dict[str, Any] | str | None,
    guided_grammar: str | None,
    grammars: GrammarCompiler,
) -> GrammarSpec | None:
    given = [
        name
        for name, value in (
            ("guided_choice", guided_choice),
            ("guided_json", guided_json),
            ("guided_grammar", guided_grammar),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ParameterError(given[1], "only one of guided_choice, guided_json, guided_grammar may be given")
    if guided_choice is not None:
        if not guided_choice or any(choice == "" for choice in guided_choice):
            raise ParameterError("guided_choice", "expected a non-empty list of non-empty strings")
        return GrammarSpec(grammars.choice(guided_choice))
    if guided_json is not None:
        schema = guided_json
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise ParameterError("guided_json", f"not valid JSON: {exc}") from None
        if not isinstance(schema, (dict, bool)):
            raise ParameterError("guided_json", "expected a JSON Schema object")
        return GrammarSpec(response_schema_grammar(grammars, schema))
    if guided_grammar is not None:
        return GrammarSpec(grammars.gbnf(guided_grammar))
    return None


# ---- completions ---------------------------------------------------------------------------------------------


MAX_CHOICES_PER_REQUEST = 128
"""Choices one completions request may ask for, prompts x n (x best_of when larger): OpenAI's own ceiling on n,
so what works against OpenAI works here. Each choice is a whole generation on this model's slots."""


def completion_prompt_count(request: ot.CompletionRequest) -> int:
    """Prompts in a completions request, without tokenizing: a text or a flat token list is one."""
    prompt = request.prompt
    if isinstance(prompt, str) or not prompt or isinstance(prompt[0], int):
        return 1
    return len(prompt)


def check_choice_count(request: ot.CompletionRequest) -> int:
    """Refuse more than MAX_CHOICES_PER_REQUEST choices (a 400 naming `prompt`, `n` or `best_of`) before any
    work; returns the sequences each prompt runs at once."""
    prompts = completion_prompt_count(request)
    n = request.n or 1
    per_prompt = max(n, request.best_of or 0)
    if prompts * per_prompt > MAX_CHOICES_PER_REQUEST:
        param = "prompt" if prompts > 1 else "best_of" if per_prompt > n else "n"
        raise ParameterError(
            param,
            f"{prompts} prompt(s) x {per_prompt} choice(s) each asks for {prompts * per_prompt} choices; "
            f"at most {MAX_CHOICES_PER_REQUEST} per request",
        )
    return per_prompt


def completion_prompts(request: ot.CompletionRequest, model: TextModel) -> list[list[int]]:
    """A prompt is text, a list of texts, a token list, or a list of token lists: one engine request each."""
    prompt = request.prompt
    if isinstance(prompt, str):
        return [prompt_tokens_from_text(model, prompt, parse_special=False)]
    if not prompt:
        raise ParameterError("prompt", "the prompt is empty")
    if all(isinstance(p, str) for p in prompt):
        return [prompt_tokens_from_text(model, str(p), parse_special=False) for p in prompt]
    token_lists: list[list[int]] = (
        [[int(t) for t in prompt]]  # type: ignore[arg-type]  # a flat token list
        if all(isinstance(p, int) for p in prompt)
        else [list(p) for p in prompt]  # type: ignore[arg-type]  # a list of token lists
    )
    for tokens in token_lists:
        if not tokens:
            raise ParameterError("prompt", "a token prompt is empty")
        bad = [t for t in tokens if not 0 <= t < model.n_vocab]
        if bad:
            raise ParameterError(
                "prompt", f"token id {bad[0]} is outside the vocabulary (0..{model.n_vocab - 1})"
            )
    return token_lists


def completion_to_generations(
    request: ot.CompletionRequest, model: TextModel, grammars: GrammarCompiler
) -> CompletionPlan:
    if request.suffix is not None:
        raise ParameterError("suffix", "text insertion (suffix) is not supported")
    check_choice_count(request)
    n = request.n or 1
    if request.best_of is not None and request.best_of < n:
        raise ParameterError("best_of", f"best_of ({request.best_of}) must be at least n ({n})")
    if request.stream and request.best_of is not None and request.best_of > n:
        raise ParameterError("best_of", "best_of greater than n cannot be streamed")
    sampling = _sampling(request, model.n_vocab)
    spec = _guided_constraint(request.guided_choice, request.guided_json, request.guided_grammar, grammars)
    if request.response_format is not None:
        if spec is not None:
            raise ParameterError("response_format", "send either response_format or a guided_* parameter")
        spec = _response_format_constraint(request.response_format, grammars)
    stop = stop_list(request.stop)
    factory = constraint_factory(spec, model)
    requests = [
        GenerationRequest(
            prompt_tokens=tokens,
            sampling=sampling,
            max_tokens=request.max_tokens,
            stop=stop,
            n=n,
            best_of=request.best_of,
            echo=bool(request.echo),
            logprobs=request.logprobs,
            prompt_logprobs=request.prompt_logprobs,
            constraint_factory=factory,
        )
        for tokens in completion_prompts(request, model)
    ]
    return CompletionPlan(requests, spec.unenforced if spec is not None else ())


@dataclass
class LegacyLogprobs:
    """Builds the completions API's column-wise logprobs, keeping each choice's running text offset."""

    offset: int = 0
    tokens: list[str] = field(default_factory=list)

    def build(
        self, entries: list[TokenLogprob | None], token_ids: list[int], model: TextModel, top_n: int
    ) -> ot.CompletionLogprobs:
        out = ot.CompletionLogprobs(text_offset=[], token_logprobs=[], tokens=[], top_logprobs=[])
        for entry, token_id in zip(entries, token_ids):
            text = entry.text if entry is not None else model.token_text(token_id)
            out.tokens.append(text)
            out.text_offset.append(self.offset)
            self.offset += len(text)
            out.token_logprobs.append(entry.logprob if entry is not None else None)
            out.top_logprobs.append(
                {t: lp for _, t, lp in entry.top[:top_n]} if entry is not None and top_n > 0 else None
            )
        return out


def prompt_logprobs_wire(
    entries: list[TokenLogprob | None] | None, top_n: int
) -> list[dict[str, ot.PromptLogprob] | None] | None:
    """vLLM's prompt_logprobs: per prompt token, the token itself and its top-N alternatives by token id (a
    string key in JSON), each with its logprob, rank (1 = likeliest) and text; None for the first token."""
    if entries is None:
        return None
    wire: list[dict[str, ot.PromptLogprob] | None] = []
    for entry in entries:
        if entry is None:
            wire.append(None)
            continue
        by_id = {
            str(token_id): ot.PromptLogprob(logprob=logprob, rank=rank, decoded_token=text)
            for rank, (token_id, text, logprob) in enumerate(entry.top[:top_n], start=1)
        }
        by_id.setdefault(
            str(entry.token_id),
            ot.PromptLogprob(logprob=entry.logprob, rank=entry.rank or 0, decoded_token=entry.text),
        )
        wire.append(by_id)
    return wire


def usage(done: GenerationDone | list[GenerationDone]) -> ot.CompletionUsage:
    dones = done if isinstance(done, list) else [done]
    prompt = sum(d.prompt_tokens for d in dones)
    completion = sum(d.completion_tokens for d in dones)
    return ot.CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def completion_response(
    request: ot.CompletionRequest, results: list[GenerationResult], model: TextModel
) -> ot.Completion:
    choices: list[ot.CompletionChoice] = []
    for prompt_index, result in enumerate(results):
        prompt_logprobs = prompt_logprobs_wire(result.prompt_logprobs, request.prompt_logprobs or 0)
        for choice in result.choices:
            logprobs = None
            if request.logprobs is not None:
                logprobs = LegacyLogprobs().build(choice.logprobs, choice.token_ids, model, request.logprobs)
            choices.append(
                ot.CompletionChoice(
                    finish_reason=openai_finish_reason(choice.finish_reason),
                    index=prompt_index * len(result.choices) + choice.index,
                    logprobs=logprobs,
                    text=choice.text,
                    prompt_logprobs=prompt_logprobs,
                )
            )
    return ot.Completion(choices=choices, model=request.model, usage=usage([r.done for r in results]))


class CompletionStream:
    """Engine events of every prompt to `text_completion` chunks of one id; choice indexes are offset by the
    prompt's position. Prompt logprobs ride on each choice's first chunk."""

    def __init__(self, request: ot.CompletionRequest, model: TextModel) -> None:
        self._request = request
        self._model = model
        self._per_prompt = request.n or 1
        self._logprobs: dict[int, LegacyLogprobs] = {}
        self._prompt_logprobs: dict[int, list[dict[str, ot.PromptLogprob] | None]] = {}
        """Each prompt's, by prompt index."""
        self._unsent: set[int] = set()
        """Choice indexes that have not carried their prompt's logprobs yet."""
        self.id = f"cmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _chunk(self, choice: ot.CompletionChoice, prompt_index: int = 0) -> ot.Completion:
        if choice.index in self._unsent:
            self._unsent.discard(choice.index)
            choice.prompt_logprobs = self._prompt_logprobs[prompt_index]
        return ot.Completion(id=self.id, created=self.created, model=self._request.model, choices=[choice])

    def chunks(self, event: GenerationEvent, prompt_index: int = 0) -> Iterator[ot.Completion]:
        base = prompt_index * self._per_prompt
        if isinstance(event, PromptScored):
            wire = prompt_logprobs_wire(event.logprobs, self._request.prompt_logprobs or 0)
            if wire is not None:
                self._prompt_logprobs[prompt_index] = wire
                self._unsent.update(range(base, base + self._per_prompt))
        elif isinstance(event, TextPiece):
            logprobs = None
            if self._request.logprobs is not None:
                builder = self._logprobs.setdefault(base + event.index, LegacyLogprobs())
                logprobs = builder.build(
                    logprob_entries(event), event.token_ids, self._model, self._request.logprobs
                )
            yield self._chunk(
                ot.CompletionChoice(
                    finish_reason=None, index=base + event.index, logprobs=logprobs, text=event.text
                ),
                prompt_index,
            )
        elif isinstance(event, ChoiceFinished):
            yield self._chunk(
                ot.CompletionChoice(
                    finish_reason=openai_finish_reason(event.finish_reason),
                    index=base + event.index,
                    logprobs=None,
                    text="",
                ),
                prompt_index,
            )

    def usage_chunk(self, dones: list[GenerationDone]) -> ot.Completion:
        return ot.Completion(
            id=self.id, created=self.created, model=self._request.model, choices=[], usage=usage(dones)
        )


# ---- chat ----------------------------------------------------------------------------------------------------


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


def _response_format_constraint(
    response_format: ot.ResponseFormat | None, grammars: GrammarCompiler
) -> GrammarSpec | None:
    if response_format is None or isinstance(response_format, ot.ResponseFormatText):
        return None
    if isinstance(response_format, ot.ResponseFormatJSONObject):
        return GrammarSpec(grammars.json_object())
    schema = response_format.json_schema.schema_
    if schema is None:
        return GrammarSpec(grammars.json_object())
    # OpenAI's default is non-strict: only strict true refuses a keyword no grammar can enforce.
    grammar = response_schema_grammar(grammars, schema, lenient=response_format.json_schema.strict is not True)
    return GrammarSpec(grammar, tuple(f"response_format: {keyword}" for keyword in grammar.unenforced))


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
    guided = _guided_constraint(request.guided_choice, request.guided_json, request.guided_grammar, grammars)
    formatted = _response_format_constraint(request.response_format, grammars)
    if guided is not None and formatted is not None:
        raise ParameterError(
            "response_format", "cannot be combined with guided_choice/guided_json/guided_grammar"
        )
    spec = guided or formatted
    messages, tools = chat_messages(request.messages), None
    if use is not None:
        if spec is not None:
            raise ParameterError("tools", "cannot be combined with response_format or guided decoding")
        messages, tools = prompt_messages(messages, use)
        spec = tool_constraint(use, grammars)
    prompt, template_stops = render_chat(model, template, messages, tools)
    stop = stop_list(request.stop)
    engine_request = GenerationRequest(
        prompt_tokens=prompt,
        sampling=_sampling(request, model.n_vocab),
        max_tokens=_chat_max_tokens(request),
        stop=stop + [s for s in template_stops if s not in stop],
        n=request.n or 1,
        logprobs=(request.top_logprobs or 0) if request.logprobs else None,
        constraint_factory=constraint_factory(spec, model),
    )
    return ChatGeneration(engine_request, use, spec.unenforced if spec is not None else ())


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


# ---- embeddings ----------------------------------------------------------------------------------------------


def embedding_texts(request: ot.EmbeddingRequest) -> list[str]:
    if isinstance(request.input, str):
        return [request.input]
    if not request.input:
        raise ParameterError("input", "at least one input is required")
    if not all(isinstance(item, str) for item in request.input):
        raise ParameterError("input", "token arrays are not supported for embeddings; send text")
    return list(request.input)  # type: ignore[arg-type]


def embedding_response(
    request: ot.EmbeddingRequest, vectors: list[list[float]], prompt_tokens: int
) -> ot.CreateEmbeddingResponse:
    """base64 is the little-endian float32 bytes of each vector (what the openai SDK asks for by default)."""
    data: list[ot.Embedding] = []
    for index, vector in enumerate(vectors):
        if request.encoding_format == "base64":
            encoded: list[float] | str = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode(
                "ascii"
            )
        else:
            encoded = vector
        data.append(ot.Embedding(embedding=encoded, index=index))
    return ot.CreateEmbeddingResponse(
        data=data,
        model=request.model,
        usage=ot.EmbeddingUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens),
    )
