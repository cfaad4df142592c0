"""OpenAI `/v1/completions` requests to engine requests (one per prompt), and engine events back to completions
and `text_completion` chunks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge_runtime.api import openai_types as ot
from edge_runtime.api.errors import ParameterError
from edge_runtime.api.generation import (
    CompletionPlan,
    GenerationResult,
    TextModel,
    constraint_factory,
    logprob_entries,
    openai_finish_reason,
    prompt_tokens_from_text,
    stop_list,
)
from edge_runtime.api.openai_sampling import guided_constraint, response_format_constraint, sampling_params
from edge_runtime.engine.types import (
    ChoiceFinished,
    GenerationDone,
    GenerationEvent,
    GenerationRequest,
    PromptScored,
    TextPiece,
    TokenLogprob,
)

if TYPE_CHECKING:
    from edge_runtime.grammar import GrammarCompiler

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
    sampling = sampling_params(request, model.n_vocab)
    spec = guided_constraint(request.guided_choice, request.guided_json, request.guided_grammar, grammars)
    if request.response_format is not None:
        if spec is not None:
            raise ParameterError("response_format", "send either response_format or a guided_* parameter")
        spec = response_format_constraint(request.response_format, grammars)
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
