"""Prompt-lookup drafts: guessed tokens checked in the same decode as a sequence's next token. The model keeps
only the guesses it would have chosen itself, so an answer with drafts is the answer without them (up to the float
noise of a different batch shape), and the guesses it refused leave the cache."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from engine_support import TINY_CONFIG, Generation, collect

from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.prompt_lookup import PromptLookup, draft_room
from edge_runtime.engine.types import GenerationRequest, SamplingParams, TokenLogprob
from edge_runtime.server.metrics import ServerMetrics

NOISE = 1e-3
"""Two runs' logprobs of one token differ by float noise only (different batch shapes), never by this much."""


def test_a_draft_continues_the_latest_longest_match() -> None:
    lookup = PromptLookup(length=4)
    #          0  1  2  3  4  5  6  7  8  9
    context = [5, 6, 7, 8, 9, 1, 6, 7, 3, 4, 6, 7]
    # (6, 7) last continued at 8 (with 3, 4); (x, 6, 7) never occurred with x = 4.
    assert lookup.draft(context, 8) == [3, 4, 6, 7]
    assert PromptLookup(length=4).draft([*context[:-1], 2], 8) == []  # (4, 6, 2) and (6, 2) are new
    longer = [1, 2, 3, 9, 9, 2, 3, 5, 1, 2, 3]
    assert PromptLookup(length=2).draft(longer, 8) == [9, 9]  # (1, 2, 3) beats the later (2, 3)


def test_the_draft_length_follows_what_the_model_kept() -> None:
    lookup = PromptLookup()
    context = [1, 2, 3, 4, 5, 6, 1, 2]
    assert lookup.draft(context, 8) == [3]
    lookup.checked(kept=1, max_draft=4)
    assert lookup.draft(context, 8) == [3, 4]
    lookup.checked(kept=2, max_draft=3)
    assert lookup.draft(context, 8) == [3, 4, 5]
    lookup.checked(kept=0, max_draft=4)
    assert lookup.draft(context, 8) == []  # one step without a guess after a refused one
    assert lookup.draft(context, 8) == [3]
    assert lookup.draft(context, 0) == []


def test_sequences_beyond_two_carry_no_draft() -> None:
    assert [draft_room(n, 4) for n in (1, 2, 3, 4)] == [4, 1, 0, 0]
    assert draft_room(1, 0) == 0


def repetitive_prompt(model: LoadedModel) -> list[int]:
    return model.tokenize(" ".join(["the red fox jumps over the lazy dog and runs home"] * 5))


def greedy(prompt: list[int], max_tokens: int = 48) -> GenerationRequest:
    return GenerationRequest(prompt, max_tokens=max_tokens, logprobs=5, sampling=SamplingParams(temperature=0.0))


def assert_same_answer(plain: Generation, drafted: Generation) -> None:
    """Token by token the same, with the same logprobs; where float noise made the runs part (a near tie),
    the drafted run's token was as likely as the plain run's."""
    plain_entries = [e for p in plain.pieces for e in (p.logprobs or [])]
    drafted_entries = [e for p in drafted.pieces for e in (p.logprobs or [])]
    assert len(plain_entries) == len(plain.tokens()) and len(drafted_entries) == len(drafted.tokens())
    for ours, theirs in zip(drafted_entries, plain_entries, strict=False):
        assert isinstance(ours, TokenLogprob) and isinstance(theirs, TokenLogprob)
        if ours.token_id != theirs.token_id:
            alternatives = {token: logprob for token, _, logprob in theirs.top}
            assert abs(alternatives[ours.token_id] - theirs.logprob) < NOISE
            return
        assert abs(ours.logprob - theirs.logprob) < NOISE
    assert plain.tokens() == drafted.tokens()


def test_drafted_answers_are_the_answers_without_drafts(
    make_tiny_llm: Callable[[EngineConfig], LoadedModel],
) -> None:
    plain = make_tiny_llm(dataclasses.replace(TINY_CONFIG, draft_tokens=0))
    drafting = make_tiny_llm(dataclasses.replace(TINY_CONFIG, draft_tokens=4))
    steps = drafting.scheduler._steps  # type: ignore[union-attr]
    prompt = repetitive_prompt(drafting)
    for request in (greedy(prompt), greedy(prompt[:40], max_tokens=64), greedy(prompt[7:30], max_tokens=64)):
        expected = asyncio.run(collect(plain, request))
        got = asyncio.run(collect(drafting, request))
        assert_same_answer(expected, got)
    assert steps.draft_accepted > 0  # tokens were kept without a decode of their own
    assert steps.drafted > steps.draft_accepted  # and guesses were refused, their cache entries dropped
    metrics = ServerMetrics()
    metrics.observe_engine([drafting])
    exported = metrics.render()
    assert f'edge_runtime_draft_tokens_total{{model="tiny"}} {steps.drafted}' in exported
    assert f'edge_runtime_draft_tokens_accepted_total{{model="tiny"}} {steps.draft_accepted}' in exported


def test_a_slot_holds_exactly_its_answer_after_refused_drafts(
    make_tiny_llm: Callable[[EngineConfig], LoadedModel],
) -> None:
    """The next prompt that extends an answer reuses the slot's cache: refused guesses left in it would
    change what follows."""
    plain = make_tiny_llm(dataclasses.replace(TINY_CONFIG, n_slots=1, draft_tokens=0))
    drafting = make_tiny_llm(dataclasses.replace(TINY_CONFIG, n_slots=1, draft_tokens=4))
    prompt = repetitive_prompt(drafting)[:60]
    first = asyncio.run(collect(drafting, greedy(prompt, max_tokens=40)))
    assert drafting.scheduler._steps.drafted > drafting.scheduler._steps.draft_accepted  # type: ignore[union-attr]
    extended = [*prompt, *first.tokens(), *drafting.tokenize(" and then", add_special=False)]
    reused = asyncio.run(collect(drafting, greedy(extended, max_tokens=1)))
    fresh = asyncio.run(collect(plain, greedy(extended, max_tokens=1)))
    assert reused.done.cached_prompt_tokens >= len(prompt) + len(first.tokens()) - 1
    assert_same_answer(fresh, reused)
