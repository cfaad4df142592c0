"""TokenSampler and log_softmax_info on known logits: each parameter changes the draw as specified."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from edge_runtime.engine.sampling import REPETITION_WINDOW, TokenSampler, log_softmax_info
from edge_runtime.engine.types import SamplingParams

LOGITS = np.array([0.0, 1.0, 2.0, 3.0, 2.5, -1.0, 0.5, 1.5], dtype=np.float32)
"""Token 3 is the most likely, then 4, 2, 7, 1, 6, 0, 5."""


def draws(params: SamplingParams, *, count: int = 400, prompt: list[int] | None = None) -> Counter[int]:
    sampler = TokenSampler.create(params, 0, prompt or [])
    return Counter(sampler.sample(LOGITS.copy(), None, np.zeros(0, dtype=np.bool_)) for _ in range(count))


def test_temperature_zero_is_greedy() -> None:
    assert draws(SamplingParams(temperature=0.0), count=20) == Counter({3: 20})


def test_temperature_spreads_the_draws() -> None:
    cold = draws(SamplingParams(temperature=0.1, seed=1))
    hot = draws(SamplingParams(temperature=5.0, seed=1))
    assert cold[3] > 0.95 * cold.total()
    assert len(hot) == len(LOGITS)
    assert hot[3] < 0.4 * hot.total()


@pytest.mark.parametrize("temperature", [1e-300, 1e30, 1e308, float("inf")])
def test_extreme_temperatures_draw_only_allowed_tokens(temperature: float) -> None:
    """Llama Stack bounds temperature only below: a masked token (-inf) must never be drawn, and nothing
    becomes NaN (1e308 once drew a masked token 0 and failed the generation)."""
    sampler = TokenSampler.create(SamplingParams(temperature=temperature, seed=5), 0, [])
    for _ in range(50):
        logits = LOGITS.copy()
        logits[[0, 3, 5]] = -np.inf
        assert sampler.sample(logits, None, np.zeros(0, dtype=np.bool_)) in {1, 2, 4, 6, 7}
    if temperature <= 1.0:
        assert draws(SamplingParams(temperature=temperature, seed=5), count=20) == Counter({3: 20})
    else:
        assert len(draws(SamplingParams(temperature=temperature, seed=5), count=400)) == len(LOGITS)


def test_draws_follow_the_softmax() -> None:
    counts = draws(SamplingParams(temperature=1.0, seed=3), count=4000)
    expected = np.exp(LOGITS - LOGITS.max()) / np.exp(LOGITS - LOGITS.max()).sum()
    observed = np.array([counts[token] for token in range(len(LOGITS))]) / 4000
    assert np.abs(observed - expected).max() < 0.03


def test_top_k_keeps_the_k_most_likely() -> None:
    assert set(draws(SamplingParams(temperature=2.0, top_k=2, seed=5))) == {3, 4}
    assert draws(SamplingParams(temperature=2.0, top_k=1, seed=5), count=10) == Counter({3: 10})


def test_top_p_keeps_the_smallest_set_reaching_the_mass() -> None:
    probs = np.exp(LOGITS - LOGITS.max()) / np.exp(LOGITS - LOGITS.max()).sum()
    order = np.argsort(-probs)
    needed = int(np.searchsorted(np.cumsum(probs[order]), 0.7)) + 1
    counts = draws(SamplingParams(temperature=1.0, top_p=0.7, seed=7))
    assert set(counts) == set(order[:needed].tolist())


def test_min_p_drops_tokens_far_below_the_best() -> None:
    counts = draws(SamplingParams(temperature=1.0, min_p=0.3, seed=9))
    # p(token) / p(best) >= 0.3  <=>  logit >= 3 + ln(0.3) = 1.796
    assert set(counts) == {2, 3, 4}


def test_logit_bias_forces_and_bans() -> None:
    assert draws(SamplingParams(temperature=1.0, logit_bias={5: 100.0}, seed=2), count=50) == Counter({5: 50})
    banned = draws(SamplingParams(temperature=3.0, logit_bias={3: -100.0, 4: -100.0}, seed=2))
    assert 3 not in banned and 4 not in banned and banned.total() == 400


def test_frequency_and_presence_penalties_lower_recorded_tokens() -> None:
    for params in (SamplingParams(frequency_penalty=0.3), SamplingParams(presence_penalty=0.6)):
        sampler = TokenSampler.create(params, 0, [])
        logits = LOGITS.copy()
        for _ in range(3):
            sampler.record(3)
        assert sampler.sample(logits, None, np.zeros(0, dtype=np.bool_)) == 4
        assert logits[3] == pytest.approx(3.0 - 0.9 if params.frequency_penalty else 3.0 - 0.6)
        assert logits[4] == 2.5


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    sampler = TokenSampler.create(SamplingParams(repetition_penalty=2.0), 0, [3, 5])
    logits = LOGITS.copy()
    assert sampler.sample(logits, None, np.zeros(0, dtype=np.bool_)) == 4
    assert logits[3] == pytest.approx(1.5) and logits[5] == pytest.approx(-2.0)
    assert logits[4] == 2.5


def test_repetition_penalty_looks_at_a_recent_window_only() -> None:
    sampler = TokenSampler.create(SamplingParams(repetition_penalty=2.0), 0, [3] + [0] * REPETITION_WINDOW)
    logits = LOGITS.copy()
    assert sampler.sample(logits, None, np.zeros(0, dtype=np.bool_)) == 3


def test_same_seed_same_draws_other_choice_index_other_draws() -> None:
    params = SamplingParams(temperature=1.5, seed=11)

    def sequence(choice_index: int) -> list[int]:
        sampler = TokenSampler.create(params, choice_index, [])
        return [sampler.sample(LOGITS.copy(), None, np.zeros(0, dtype=np.bool_)) for _ in range(30)]

    assert sequence(0) == sequence(0)
    assert sequence(0) != sequence(1)


def test_log_softmax_info_is_normalized_and_sorted() -> None:
    info = log_softmax_info(LOGITS, 2, 3)
    total = np.log(np.exp(LOGITS.astype(np.float64)).sum())
    assert info.chosen == pytest.approx(2.0 - total)
    assert [token for token, _ in info.top] == [3, 4, 2]
    assert all(a[1] >= b[1] for a, b in zip(info.top, info.top[1:], strict=False))
    assert all(logprob <= 0.0 for _, logprob in info.top)
    assert np.exp([logprob for _, logprob in log_softmax_info(LOGITS, 0, 8).top]).sum() == pytest.approx(1.0)
    assert log_softmax_info(LOGITS, 0, 0).top == []
