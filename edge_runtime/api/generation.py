"""What both API families share on the way to the engine: the model facade they need, prompts, constraints,
logit bias, and the result of a whole generation gathered from its events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from edge_runtime.api.errors import ParameterError
from edge_runtime.engine.types import (
    ChoiceFinished,
    Constraint,
    FinishReason,
    GenerationDone,
    GenerationEvent,
    GenerationRequest,
    PromptScored,
    TextPiece,
    TokenLogprob,
)

if TYPE_CHECKING:
    from edge_runtime.engine.chat_template import ChatTemplate
    from edge_runtime.engine.scheduler import Reservation
    from edge_runtime.grammar import Grammar, GrammarCompiler, Vocabulary


class TextModel(Protocol):
    """The part of the engine's LoadedModel that translation needs (the engine's class satisfies it)."""

    model_id: str
    n_vocab: int
    n_ctx_per_slot: int
    bos_token: str
    eos_token: str
    architecture: str
    chat_template: str | None

    @property
    def vocabulary(self) -> Vocabulary: ...

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = False) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def token_text(self, token_id: int) -> str: ...

    def encode_bytes(self, data: bytes) -> list[int]: ...

    def reserve(self, n_sequences: int) -> Reservation: ...

    def generate(
        self, request: GenerationRequest, reservation: Reservation | None = None
    ) -> AsyncIterator[GenerationEvent]: ...


@dataclass(frozen=True)
class CompletionPlan:
    """A completions body ready for the engine: one request per prompt, and the schema keywords a lenient
    compile left out (OpenAI `strict: false`), for the response to name."""

    requests: list[GenerationRequest]
    unenforced: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrammarSpec:
    """Decode with a compiled grammar; `unenforced` lists the schema keywords a lenient compile left out."""

    grammar: Grammar
    unenforced: tuple[str, ...] = ()


def response_schema_grammar(
    grammars: GrammarCompiler, schema: dict[str, Any] | bool, *, lenient: bool = False
) -> Grammar:
    """A response schema's grammar as every API route compiles it: strict unless `lenient` (then keywords a
    grammar cannot enforce are left out and listed in the grammar's `unenforced`), and objects that declare
    properties and say nothing of extra ones get none (as OpenAI, llama.cpp and XGrammar generate them): a
    model otherwise invents keys until max_tokens. The JSON comes in the canonical layout (`JsonLayout`): its
    structure is forced, so it costs no model steps."""
    return grammars.json_schema(schema, lenient=lenient, closed_objects=True, layout="canonical")


def constraint_factory(spec: GrammarSpec | None, model: TextModel) -> Callable[[], Constraint] | None:
    """One fresh constraint per choice; the compiled grammar (and the model's vocabulary index) are shared."""
    if spec is None:
        return None
    from edge_runtime.engine.grammar_constraint import GrammarConstraint
    from edge_runtime.grammar import GrammarMatcher

    grammar, vocabulary, encode = spec.grammar, model.vocabulary, model.encode_bytes
    grammar.check_tokens(vocabulary)
    _warm_first_steps(GrammarConstraint(GrammarMatcher(grammar, vocabulary), encode), vocabulary.size)
    return lambda: GrammarConstraint(GrammarMatcher(grammar, vocabulary), encode)


def _warm_first_steps(constraint: Constraint, vocabulary_size: int) -> None:
    """Compute, here (the request's translate thread), what the first decoding step asks of a grammar: the
    forced tokens of its start and the mask where they lead. Both are cached in the shared grammar, so the
    scheduler thread, which decodes every running stream, finds them instead of walking the vocabulary for a
    new grammar while the other streams wait."""
    mask = np.zeros(vocabulary_size, dtype=bool)
    constraint.fill_mask(mask)
    for token in constraint.forced_tokens():
        if not constraint.accept_token(token):
            return
    constraint.fill_mask(mask)


def prompt_tokens_from_text(model: TextModel, text: str, *, parse_special: bool) -> list[int]:
    """Tokenize a prompt, adding the model's BOS once even when the rendered template already starts with it."""
    tokens = model.tokenize(text, add_special=True, parse_special=parse_special)
    if len(tokens) >= 2 and tokens[0] == tokens[1] and model.bos_token and text.startswith(model.bos_token):
        tokens = tokens[1:]
    if not tokens:
        raise ParameterError("prompt", "the prompt is empty")
    return tokens


def chat_template(model: TextModel, override: str | None = None) -> ChatTemplate:
    """The store's override for this model (a template text or a built-in name) wins over the GGUF's."""
    from edge_runtime.engine.chat_template import ChatTemplate

    return ChatTemplate.for_model(
        gguf_template=model.chat_template, architecture=model.architecture, override=override
    )


def render_chat(
    model: TextModel,
    template: ChatTemplate,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
) -> tuple[list[int], list[str]]:
    """Render a conversation with the model's chat template; returns the prompt tokens and the template's
    end-of-turn strings (stop strings in case the model spells them as plain text)."""
    text = template.render(
        messages,
        add_generation_prompt=True,
        tools=tools,
        bos_token=model.bos_token,
        eos_token=model.eos_token,
    )
    return prompt_tokens_from_text(model, text, parse_special=True), list(template.stop_strings)


def parse_logit_bias(bias: dict[str, float] | None, n_vocab: int) -> dict[int, float]:
    """OpenAI sends token ids as JSON object keys (strings); each must name a token of this model."""
    parsed: dict[int, float] = {}
    for key, value in (bias or {}).items():
        try:
            token_id = int(key)
        except ValueError:
            raise ParameterError("logit_bias", f"key '{key}' is not a token id") from None
        if not 0 <= token_id < n_vocab:
            raise ParameterError(
                "logit_bias", f"token id {token_id} is outside the vocabulary (0..{n_vocab - 1})"
            )
        if not -100.0 <= value <= 100.0:
            raise ParameterError("logit_bias", f"bias {value} for token {token_id} is outside [-100, 100]")
        parsed[token_id] = float(value)
    return parsed


def stop_list(stop: str | Sequence[str] | None) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else list(stop)
    if any(s == "" for s in stops):
        raise ParameterError("stop", "a stop string must not be empty")
    return stops


@dataclass
class ChoiceResult:
    """Everything one choice produced, gathered from the engine's events."""

    index: int
    text: str = ""
    logprobs: list[TokenLogprob | None] = field(default_factory=list)
    """One entry per streamed token (None where the engine gave no logprob)."""
    token_ids: list[int] = field(default_factory=list)
    """The streamed tokens, in the order of `logprobs`."""
    finish_reason: FinishReason = "length"


@dataclass
class GenerationResult:
    choices: list[ChoiceResult]
    done: GenerationDone
    prompt_logprobs: list[TokenLogprob | None] | None = None
    """Set when the request asked for prompt logprobs (vLLM's prompt_logprobs)."""


def logprob_entries(piece: TextPiece) -> list[TokenLogprob | None]:
    """One entry per token of a piece: None where the engine gave no logprob (echoed prompt tokens)."""
    if piece.logprobs is not None:
        return list(piece.logprobs)
    return [None] * len(piece.token_ids)


async def collect(events: AsyncIterator[GenerationEvent], n_choices: int) -> GenerationResult:
    """Drain a generation into per-choice results; the final text comes from ChoiceFinished (best_of may drop
    candidates whose pieces were streamed)."""
    results = {i: ChoiceResult(index=i) for i in range(n_choices)}
    pieces: dict[int, list[TextPiece]] = {i: [] for i in range(n_choices)}
    prompt_logprobs: list[TokenLogprob | None] | None = None
    async for event in events:
        if isinstance(event, TextPiece):
            pieces.setdefault(event.index, []).append(event)
        elif isinstance(event, ChoiceFinished):
            result = results.setdefault(event.index, ChoiceResult(index=event.index))
            result.text = event.text
            result.finish_reason = event.finish_reason
            result.token_ids = [t for p in pieces.get(event.index, []) for t in p.token_ids]
            result.logprobs = [lp for p in pieces.get(event.index, []) for lp in logprob_entries(p)]
        elif isinstance(event, PromptScored):
            prompt_logprobs = event.logprobs
        elif isinstance(event, GenerationDone):
            return GenerationResult([results[i] for i in sorted(results)], event, prompt_logprobs)
    raise RuntimeError("the engine's event stream ended without GenerationDone")


NativeStopReason = Literal["end_of_turn", "end_of_message", "out_of_tokens"]


def native_stop_reason(reason: FinishReason) -> NativeStopReason:
    return "out_of_tokens" if reason == "length" else "end_of_turn"


def openai_finish_reason(reason: FinishReason) -> Literal["stop", "length"]:
    return "length" if reason == "length" else "stop"
