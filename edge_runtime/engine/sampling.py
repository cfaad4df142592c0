"""Choosing the next token from a logits row: bias, penalties, constraint, temperature, top-k/top-p/min-p.

The row is llama.cpp's own output buffer, processed in place (valid until the next decode). Each choice has its
own seeded generator drawing one uniform number per sample, so a seed gives the same tokens whether the request
runs alone or beside others.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from edge_runtime._native import apply_mask
from edge_runtime.engine.types import Constraint, SamplingParams

REPETITION_WINDOW = 64
"""The repetition penalty looks at this many most recent tokens (prompt included), as llama.cpp does."""

_NEGLIGIBLE_GAP = 30.0
"""A token whose temperature-scaled logit is this far below the best has under e^-30 (1e-13) of its probability;
the whole vocabulary of such tokens holds under 1e-7 of the mass. They are dropped before the softmax (and so is
what min_p drops: p / p_best < min_p), which spares exp and sorting over the whole vocabulary."""

_FLOAT32_LOWEST = float(np.finfo(np.float32).min)
_FLOAT32_HIGHEST = float(np.finfo(np.float32).max)

_TOP_N_WINDOW = 16.0
"""Top-N alternatives are first looked for among the tokens this close to the best logit (usually plenty)."""

_NUCLEUS_FLOORS = (1e-2, 1e-4, 1e-6)
"""Top-p sorts only the tokens at least this likely relative to the best, trying each floor until they hold
enough of the mass (and sorts them all when none does)."""


@dataclass
class Logprobs:
    """The unprocessed distribution's log-probabilities: what OpenAI and Llama Stack report."""

    chosen: float
    top: list[tuple[int, float]]


@dataclass
class TokenSampler:
    params: SamplingParams
    rng: np.random.Generator
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=REPETITION_WINDOW))
    generated: Counter[int] = field(default_factory=Counter)
    bias_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    bias_values: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    mask_seconds: list[float] = field(default_factory=list)
    """How long each full constraint mask this sampler asked for took, in order."""

    @classmethod
    def create(cls, params: SamplingParams, choice_index: int, prompt: list[int]) -> TokenSampler:
        seed = params.seed if params.seed is not None else secrets.randbits(64)
        rng = np.random.Generator(np.random.PCG64([seed & ((1 << 64) - 1), choice_index]))
        sampler = cls(
            params,
            rng,
            bias_ids=np.fromiter(params.logit_bias.keys(), dtype=np.int64, count=len(params.logit_bias)),
            bias_values=np.fromiter(
                params.logit_bias.values(), dtype=np.float32, count=len(params.logit_bias)
            ),
        )
        sampler.recent.extend(prompt[-REPETITION_WINDOW:])
        return sampler

    def record(self, token: int) -> None:
        self.recent.append(token)
        self.generated[token] += 1

    def sample(self, logits: np.ndarray, constraint: Constraint | None, mask: np.ndarray) -> int:
        """One token; with a constraint, exact rejection sampling: a token drawn as if free is kept when the
        constraint takes it, otherwise the draw is repeated on the masked distribution."""
        self._adjust(logits)
        token = self._draw(logits)
        if constraint is None or constraint.accept_token(token):
            return token
        started = time.perf_counter()
        constraint.fill_mask(mask)
        self.mask_seconds.append(time.perf_counter() - started)
        if not mask.any():
            raise RuntimeError("the constraint allows no token (the grammar cannot continue)")
        apply_mask(logits, mask)
        token = self._draw(logits)
        if not constraint.accept_token(token):
            raise RuntimeError(f"the constraint refused token {token} from its own mask")
        return token

    def _adjust(self, logits: np.ndarray) -> None:
        params = self.params
        if self.bias_ids.shape[0]:
            logits[self.bias_ids] += self.bias_values
        if self.generated and (params.frequency_penalty or params.presence_penalty):
            ids = np.fromiter(self.generated.keys(), dtype=np.int64)
            counts = np.fromiter(self.generated.values(), dtype=np.float32)
            logits[ids] -= counts * params.frequency_penalty + params.presence_penalty
        if params.repetition_penalty != 1.0 and self.recent:
            ids = np.unique(np.fromiter(self.recent, dtype=np.int64))
            values = logits[ids]
            logits[ids] = np.where(
                values > 0, values / params.repetition_penalty, values * params.repetition_penalty
            )

    def _draw(self, logits: np.ndarray) -> int:
        params = self.params
        if params.temperature <= 0.0 or params.top_k == 1:
            return int(np.argmax(logits))
        peak = float(logits.max())
        gap = _NEGLIGIBLE_GAP if params.min_p <= 0.0 else min(_NEGLIGIBLE_GAP, -math.log(params.min_p))
        # Held to float32's finite range: a huge temperature (Llama Stack sets no upper bound) must not let
        # masked (-inf) tokens in, nor make 0 x inf a NaN; its draw is then uniform over the allowed tokens.
        floor = max(peak - gap * params.temperature, _FLOAT32_LOWEST)
        scale = np.float32(min(1.0 / params.temperature, _FLOAT32_HIGHEST))
        if 0 < params.top_k < logits.shape[0]:
            candidates = np.argpartition(logits, -params.top_k)[-params.top_k :]
            candidates = candidates[logits[candidates] >= floor]
        else:
            candidates = np.flatnonzero(logits >= floor)
        probs = logits[candidates] - np.float32(peak)
        probs *= scale
        np.exp(probs, out=probs)
        if params.top_p < 1.0:
            keep = _nucleus(probs, params.top_p)
            candidates, probs = candidates[keep], probs[keep]
        cumulative = np.cumsum(probs, dtype=np.float64)
        index = int(np.searchsorted(cumulative, self.rng.random() * cumulative[-1], side="right"))
        return int(candidates[min(index, candidates.shape[0] - 1)])


def _nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """Indices of the smallest set of most likely entries whose share of the mass reaches top_p, most likely
    first. Only the entries above a probability floor are sorted, the floor lowered until they hold enough."""
    target = top_p * float(probs.sum(dtype=np.float64))
    best = float(probs.max())
    head = np.arange(probs.shape[0])
    for ratio in _NUCLEUS_FLOORS:
        above = np.flatnonzero(probs >= ratio * best)
        if float(probs[above].sum(dtype=np.float64)) >= target:
            head = above
            break
    head = head[np.argsort(-probs[head], kind="stable")]
    cumulative = np.cumsum(probs[head], dtype=np.float64)
    return head[: int(np.searchsorted(cumulative, target, side="left")) + 1]


def log_softmax_info(raw: np.ndarray, token: int, top_n: int) -> Logprobs:
    """The chosen token's log-probability and the top-N alternatives, highest first, from unprocessed logits."""
    peak = float(raw.max())
    shifted = raw - np.float32(peak)
    np.exp(shifted, out=shifted)
    log_total = peak + math.log(float(shifted.sum(dtype=np.float64)))
    top: list[tuple[int, float]] = []
    if top_n > 0:
        n = min(top_n, raw.shape[0])
        near = np.flatnonzero(raw >= peak - _TOP_N_WINDOW)
        if near.shape[0] >= n:
            ids = near[np.argpartition(raw[near], -n)[-n:]]
        else:
            ids = np.argpartition(raw, -n)[-n:]
        ids = ids[np.argsort(-raw[ids], kind="stable")]
        top = [(int(i), min(0.0, float(raw[i]) - log_total)) for i in ids]
    return Logprobs(min(0.0, float(raw[token]) - log_total), top)


def token_rank(raw: np.ndarray, token: int) -> int:
    """vLLM's rank of a token: how many tokens are at least as likely (1 for the likeliest). One comparison
    over the vocabulary, about what the log-softmax beside it already costs."""
    return int(np.count_nonzero(raw >= raw[token]))
