"""Concurrent prompts that share a prefix read it once: the first job reads it, the others wait for it and
start from a copy of its cache (an extraction script's first wave: one set of instructions, four documents at
once)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_support import SMALL_STEPS, Generation, collect, prose
from scheduler_gate import WAIT_S, StepGate, stepped_request, wait_until

from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.prefix_sharing import MIN_SHARED_READ
from edge_runtime.engine.scheduler import BatchScheduler
from edge_runtime.engine.types import GenerationRequest
from edge_runtime.server.metrics import ServerMetrics

PREFIX_TOKENS, TAIL_TOKENS = 150, 20


def prompts(model: LoadedModel, labels: list[str], prefix_tokens: int = PREFIX_TOKENS) -> list[list[int]]:
    shared = prose(model, "Instructions:", prefix_tokens, first=True)
    return [[*shared, *prose(model, label, TAIL_TOKENS)] for label in labels]


def shared_length(prompts: list[list[int]]) -> int:
    """How many tokens all the prompts start with (at least the prefix: a tail may begin with a common
    token)."""
    n = 0
    while all(len(p) > n and p[n] == prompts[0][n] for p in prompts):
        n += 1
    return n


def ask(prompt: list[int]) -> GenerationRequest:
    return GenerationRequest(prompt, max_tokens=4, logprobs=5)


async def all_at_once(model: LoadedModel, requests: list[GenerationRequest]) -> list[Generation]:
    return list(await asyncio.gather(*(collect(model, request) for request in requests)))


def test_concurrent_prompts_read_their_shared_prefix_once(
    make_tiny_llm: Callable[[EngineConfig], LoadedModel],
    small_steps_llm: LoadedModel,
    small_steps_scheduler: BatchScheduler,
) -> None:
    asked = prompts(small_steps_llm, [" Report one:", " Memo two:", " Letter three:", " Note four:"])

    answers = asyncio.run(all_at_once(small_steps_llm, [ask(prompt) for prompt in asked]))

    shared = shared_length(asked)
    assert shared >= PREFIX_TOKENS
    assert small_steps_scheduler.prefixes_shared == 3
    assert sorted(a.done.cached_prompt_tokens for a in answers) == [0, shared, shared, shared]
    assert small_steps_scheduler.prompt_tokens_decoded == sum(len(p) for p in asked) - 3 * shared
    metrics = ServerMetrics()
    metrics.observe_engine([small_steps_llm])
    assert 'edge_runtime_shared_prefixes_total{model="tiny"} 3' in metrics.render()
    # Each answer starts from the distribution the same prompt gets when read alone, from an empty cache.
    for prompt, answer in zip(asked, answers, strict=True):
        alone = make_tiny_llm(dataclasses.replace(SMALL_STEPS, n_slots=1))
        fresh = asyncio.run(collect(alone, ask(prompt)))
        assert fresh.done.cached_prompt_tokens == 0
        expected, got = fresh.first_top(), answer.first_top()
        assert expected.keys() == got.keys()
        assert all(abs(expected[token] - got[token]) < 0.02 for token in expected)


def test_a_prefix_too_short_to_share_is_read_by_each_job(
    small_steps_llm: LoadedModel, small_steps_scheduler: BatchScheduler
) -> None:
    asked = prompts(small_steps_llm, [" Report one:", " Memo two:"], prefix_tokens=MIN_SHARED_READ - 8)

    answers = asyncio.run(all_at_once(small_steps_llm, [ask(prompt) for prompt in asked]))

    assert small_steps_scheduler.prefixes_shared == 0
    assert [a.done.cached_prompt_tokens for a in answers] == [0, 0]
    assert small_steps_scheduler.prompt_tokens_decoded == sum(len(prompt) for prompt in asked)


def test_a_follower_whose_leader_goes_away_reads_its_own_prompt(
    small_steps_llm: LoadedModel, small_steps_scheduler: BatchScheduler
) -> None:
    """The scheduler is held between steps (by a third request at a gate) while the leader reads: it leaves,
    and its follower reads the whole prompt itself."""
    gate = StepGate(small_steps_llm.tokenizer.eog_ids)
    leader_prompt, follower_prompt = prompts(small_steps_llm, [" Report one:", " Memo two:"])

    async def scenario() -> Generation:
        held = stepped_request(small_steps_llm, gate, max_tokens=40)
        holder = asyncio.create_task(collect(small_steps_llm, held))
        await asyncio.to_thread(gate.wait_arrival)
        leader = asyncio.create_task(collect(small_steps_llm, GenerationRequest(leader_prompt, max_tokens=1)))
        follower = asyncio.create_task(collect(small_steps_llm, ask(follower_prompt)))
        await wait_until(lambda: small_steps_scheduler.queue_depth == 2)
        await asyncio.to_thread(gate.step)  # both admitted: the leader read its first 32 tokens
        assert small_steps_scheduler.busy_slots == 3
        assert small_steps_scheduler.prompt_tokens_decoded < PREFIX_TOKENS
        assert [job.follows is not None for job in small_steps_scheduler._running] == [False, False, True]
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        gate.open()
        answer = await asyncio.wait_for(follower, WAIT_S)  # a follower left waiting would hang here
        await holder
        return answer

    answer = asyncio.run(scenario())
    assert small_steps_scheduler.prefixes_shared == 0
    assert answer.done.cached_prompt_tokens == 0
    assert len(answer.tokens()) == 4


@pytest.mark.gemma
def test_on_a_sliding_window_model_both_slots_keep_the_shared_prefix_window(
    gemma_model_path: Path,
) -> None:
    """Gemma 3 keeps only a window per sequence: the window after the shared prefix is saved once and held by
    both slots, so each comes back to the prefix after its own window moved on."""
    model = LoadedModel(gemma_model_path, "gemma", EngineConfig(n_slots=2, n_ctx_per_slot=2048, n_threads=1))
    try:
        scheduler = model.scheduler
        assert scheduler is not None
        shared = prose(model, "Instructions:", 600, first=True)
        first_wave = [[*shared, *prose(model, label, 300)] for label in (" Report one:", " Memo two:")]
        answers = asyncio.run(all_at_once(model, [GenerationRequest(p, max_tokens=2) for p in first_wave]))
        at = shared_length(first_wave)
        assert sorted(a.done.cached_prompt_tokens for a in answers) == [0, at]
        assert scheduler.prefixes_shared == 1
        # 900 positions went through a window of 768 cells: a cut after the prefix needs the saved window.
        states = {id(c.state) for slot in scheduler._slots for c in slot.checkpoints if c.position == at}
        assert len(states) == 1
        assert scheduler.checkpoint_bytes == sum(len(c.state) for c in scheduler._slots[0].checkpoints)

        decoded = scheduler.prompt_tokens_decoded
        second_wave = [[*shared, *prose(model, label, 300)] for label in (" Letter three:", " Note four:")]
        again = asyncio.run(all_at_once(model, [GenerationRequest(p, max_tokens=2) for p in second_wave]))
        assert scheduler.checkpoint_restores == 2
        assert [a.done.cached_prompt_tokens for a in again] == [shared_length(second_wave)] * 2
        assert scheduler.prompt_tokens_decoded - decoded == sum(len(p) for p in second_wave) - 2 * at
    finally:
        model.close()
