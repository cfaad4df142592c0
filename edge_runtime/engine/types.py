"""The engine's request and event types: the contract between the scheduler and the API layer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

FinishReason = Literal["stop", "length", "stop_string"]
"""stop: an end-of-generation token (or a complete grammar); stop_string: a stop string matched;
length: max_tokens reached or the context is full."""


class Constraint(Protocol):
    """What the engine asks of a decoding constraint (the grammar engine, a choice list) at every step.

    One instance constrains one sequence; it is advanced only with tokens it accepted.
    """

    def accept_token(self, token_id: int) -> bool:
        """Advance by this token if it is allowed and return True; else return False and change nothing.
        End-of-generation tokens are allowed only when is_complete()."""
        ...

    def fill_mask(self, mask: np.ndarray) -> None:
        """Write into `mask` (bool, one entry per vocabulary token) which tokens accept_token would take."""
        ...

    def forced_tokens(self) -> list[int]:
        """Tokens that must come next whatever is sampled (jump-forward); empty when there is a choice."""
        ...

    def allows(self, tokens: list[int]) -> int:
        """How many of `tokens`, in order, accept_token would take from here (taking none of them)."""
        ...

    def is_complete(self) -> bool:
        """True when the text so far is a whole sentence of the constraint (the sequence may stop here)."""
        ...

    def is_finished(self) -> bool:
        """Complete, and nothing but end-of-generation may follow (the sequence stops without another decode)."""
        ...


def accepted_prefix(accept_token: Callable[[int], bool], tokens: list[int]) -> int:
    """How many of `tokens`, in order, `accept_token` takes (a probe's: a fork or copy of a constraint)."""
    for taken, token in enumerate(tokens):
        if not accept_token(token):
            return taken
    return len(tokens)


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen. temperature 0 is greedy; 0 for top_k and 1.0 for top_p mean off."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    seed: int | None = None


@dataclass
class GenerationRequest:
    """One completion request, already tokenized. `n` choices share the prompt's KV cache."""

    prompt_tokens: list[int]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    max_tokens: int | None = None
    """None: until the model stops or the slot's context is full."""
    stop: list[str] = field(default_factory=list)
    n: int = 1
    best_of: int | None = None
    """Generate best_of candidates and keep the n with the highest total logprob (not streamable)."""
    echo: bool = False
    """Emit the prompt's text (and its tokens) before the generated text of each choice."""
    logprobs: int | None = None
    """None: no logprobs; 0: the chosen token's logprob; N: also the top-N alternatives."""
    prompt_logprobs: int | None = None
    """vLLM's prompt logprobs: None: none; N: each prompt token's logprob and rank, and the top-N alternatives,
    sent once as a PromptScored event before any text."""
    constraint_factory: Callable[[], Constraint] | None = None
    """Builds one fresh constraint per choice; None means free decoding."""


@dataclass(frozen=True)
class TokenLogprob:
    token_id: int
    text: str
    logprob: float
    top: list[tuple[int, str, float]] = field(default_factory=list)
    """The top-N alternatives as (token_id, text, logprob), highest first."""
    rank: int | None = None
    """1 for the likeliest token; set only for prompt tokens when prompt logprobs were asked."""


@dataclass(frozen=True)
class TextPiece:
    """New text of one choice. `text` may join several tokens (a UTF-8 character is never cut)."""

    index: int
    text: str
    token_ids: list[int]
    logprobs: list[TokenLogprob | None] | None = None
    """None when logprobs were not asked; an echoed prompt's first token has no logprob (None)."""


@dataclass(frozen=True)
class ChoiceFinished:
    index: int
    finish_reason: FinishReason
    text: str
    """The whole text of this choice (with the echoed prompt when echo was asked)."""
    token_ids: list[int]
    cumulative_logprob: float


@dataclass(frozen=True)
class GenerationDone:
    """The last event of a generation: every choice has finished."""

    choices: list[ChoiceFinished]
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    """Prompt tokens that prefix reuse did not have to decode."""
    time_to_first_token_s: float
    total_time_s: float
    mask_seconds: tuple[float, ...] = ()
    """How long each full grammar mask of every choice took (one is computed only when the constraint refuses a
    freely drawn token), for the server's histogram: the engine times them, so no one wraps its constraints."""


@dataclass(frozen=True)
class PromptScored:
    """Every prompt token's logprob (None for the first, which has no context), emitted once before any text
    when the request asked for prompt logprobs; shared by all its choices."""

    logprobs: list[TokenLogprob | None]


GenerationEvent = TextPiece | ChoiceFinished | GenerationDone | PromptScored
