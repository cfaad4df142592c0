"""Choosing the next token from a logits row: bias, penalties, constraint, temperature, top-k/top-p/min-p.

The row is llama.cpp's own output buffer, processed in place (valid until the next decode). Each choice has its
own seeded generator drawing one uniform number per sample, so a seed gives the same tokens whether the request
runs alone or beside others.
"""

from __future__ import annotations

import secrets
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from edge_runtime._native import apply_mask
from edge_runtime.engine.types import Constraint, SamplingParams

REPETITION_WINDOW = 64
"""The repetition penalty looks at this many most recent tokens (prompt included), as llama.cpp does."""

_TOP_P_CANDIDATES = 512
"""Top-p first tries the most likely tokens only; it sorts the whole vocabulary only when they hold too
little of the probability mass."""


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

    @classmethod
    def create(cls, params: SamplingParams, choice_index: int, prompt: list[int]) -> TokenSampler:
        seed = params.seed if params.seed is not None else secrets.randbits(64)
        rng = np.random.Generator(np.random.PCG64([seed & ((1 << 64) - 1), choice_index]))
        sampler = cls(params, rng)
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
        constraint.fill_mask(mask)
        if not mask.any():
            raise RuntimeError("the constraint allows no token (the grammar cannot continue)")
        apply_mask(logits, mask)
        token = self._draw(logits)
        if not constraint.accept_token(token):
            raise RuntimeError(f"the constraint refused token {token} from its own mask")
        return token

    def _adjust(self, logits: np.ndarray) -> None:
        params = self.params
        if params.logit_bias:
            ids = np.fromiter(params.logit_bias.keys(), dtype=np.int64)
            logits[ids] += np.fromiter(params.logit_bias.values(), dtype=np.float32)
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
        if params.top_k > 0 and params.top_k < logits.shape[0]:
            candidates = np.argpartition(logits, -params.top_k)[-params.top_k :]
            scores = logits[candidates].astype(np.float64) / params.temperature
        else:
            candidates = None
            scores = logits.astype(np.float64) / params.temperature
        scores -= scores.max()
        probs = np.exp(scores)
        if params.min_p > 0.0:
            probs[probs < params.min_p] = 0.0
        probs /= probs.sum()
        if params.top_p < 1.0:
            probs = _nucleus(probs, params.top_p)
        uniform = self.rng.random()
        index = int(np.searchsorted(np.cumsum(probs), uniform * probs.sum(), side="right"))
        index = min(index, probs.shape[0] - 1)
        while probs[index] == 0.0 and index > 0:
            index -= 1
        return int(candidates[index]) if candidates is not None else index


def _nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """Zero every probability outside the smallest set of most likely tokens whose mass reaches top_p."""
    n = probs.shape[0]
    k = min(_TOP_P_CANDIDATES, n)
    head = np.argpartition(probs, n - k)[n - k :] if k < n else np.arange(n)
    head = head[np.argsort(-probs[head], kind="stable")]
    cumulative = np.cumsum(probs[head])
    if cumulative[-1] < top_p and k < n:
        head = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[head])
    keep = int(np.searchsorted(cumulative, top_p, side="left")) + 1
    kept = np.zeros_like(probs)
    chosen = head[:keep]
    kept[chosen] = probs[chosen]
    return kept


def log_softmax_info(raw: np.ndarray, token: int, top_n: int) -> Logprobs:
    """The chosen token's log-probability and the top-N alternatives, highest first, from unprocessed logits."""
    peak = float(raw.max())
    log_total = peak + float(np.log(np.exp(raw.astype(np.float64) - peak).sum()))
    top: list[tuple[int, float]] = []
    if top_n > 0:
        n = min(top_n, raw.shape[0])
        ids = np.argpartition(raw, -n)[-n:]
        ids = ids[np.argsort(-raw[ids], kind="stable")]
        top = [(int(i), min(0.0, float(raw[i]) - log_total)) for i in ids]
    return Logprobs(min(0.0, float(raw[token]) - log_total), top)
