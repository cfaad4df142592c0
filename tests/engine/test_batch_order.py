"""A step's batch reaches llama.cpp in sequence order, and busy slots stay on consecutive sequence ids, so that
the sequences share one forward pass over a cache with a stream per sequence; every job still reads its own
sequence's logits."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from engine_support import TINY_CONFIG, Generation, collect, prose

from edge_runtime.engine.llama_handles import Batch
from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.types import GenerationRequest, SamplingParams
from edge_runtime.server.metrics import ServerMetrics


def test_rows_are_sorted_by_sequence_and_each_row_is_told_where_it_went() -> None:
    batch = Batch(8)
    try:
        added = [(10, 0, 3, False), (11, 1, 3, True), (20, 5, 1, False), (30, 2, 2, True), (21, 6, 1, True)]
        for token, position, seq_id, want_logits in added:
            batch.add(token, position, seq_id, want_logits)

        moved = batch.order_by_sequence()

        assert moved is not None
        handle = batch.handle
        rows = [
            (handle.token[i], handle.pos[i], handle.seq_id[i][0], bool(handle.logits[i])) for i in range(len(added))
        ]
        assert rows == [
            (20, 5, 1, False), (21, 6, 1, True), (30, 2, 2, True), (10, 0, 3, False), (11, 1, 3, True),
        ]  # fmt: skip
        assert [rows[moved[i]] for i in range(len(added))] == added
        assert batch.order_by_sequence() is None  # already in order: nothing moves
    finally:
        batch.close()


def ask(model: LoadedModel, prompt: list[int]) -> GenerationRequest:
    """Greedy, and all 8 tokens long on any CPU: the end tokens are banned (the logprobs are the unbiased ones)."""
    ban = {token: -100.0 for token in model.tokenizer.eog_ids}
    return GenerationRequest(prompt, SamplingParams(logit_bias=ban), max_tokens=8, logprobs=5)


def prompts(model: LoadedModel) -> list[list[int]]:
    return [prose(model, label, 24, first=True) for label in (" Alpha", " Bravo", " Charlie", " Delta")]


def all_at_once(model: LoadedModel, asked: list[list[int]], order: list[int]) -> dict[int, Generation]:
    async def run() -> list[Generation]:
        return list(await asyncio.gather(*(collect(model, ask(model, asked[i])) for i in order)))

    return dict(zip(order, asyncio.run(run()), strict=True))


def assert_each_as_alone(
    make_tiny_llm: Callable[[EngineConfig], LoadedModel], asked: list[list[int]], answers: dict[int, Generation]
) -> None:
    """Each answer starts from the distribution its prompt gets on a model of its own."""
    alone = make_tiny_llm(dataclasses.replace(TINY_CONFIG, n_slots=1))
    for index, answer in answers.items():
        expected = asyncio.run(collect(alone, ask(alone, asked[index]))).first_top()
        got = answer.first_top()
        assert expected.keys() == got.keys()
        assert all(abs(expected[token] - got[token]) < 0.02 for token in expected)


def test_jobs_in_slots_taken_in_reverse_order_read_their_own_logits(
    tiny_llm: LoadedModel, make_tiny_llm: Callable[[EngineConfig], LoadedModel]
) -> None:
    asked = prompts(tiny_llm)
    all_at_once(tiny_llm, asked, [0, 1, 2, 3])  # each prompt now sits in the slot of its index

    answers = all_at_once(tiny_llm, asked, [3, 2, 1, 0])  # admitted last slot first: the batch comes reversed

    assert all(answers[i].done.cached_prompt_tokens == len(asked[i]) - 1 for i in answers)  # each in its slot
    assert_each_as_alone(make_tiny_llm, asked, answers)


def test_a_job_above_a_free_slot_moves_down_with_its_cache(
    tiny_llm: LoadedModel, make_tiny_llm: Callable[[EngineConfig], LoadedModel]
) -> None:
    scheduler = tiny_llm.scheduler
    assert scheduler is not None
    asked = prompts(tiny_llm)
    all_at_once(tiny_llm, asked, [0, 1, 2])  # slots 0, 1 and 2 hold the first three prompts

    answers = all_at_once(tiny_llm, asked, [0, 2])  # slots 0 and 2 busy, 1 free between them

    assert scheduler.slots_moved == 1
    metrics = ServerMetrics()
    metrics.observe_engine([tiny_llm])
    assert 'edge_runtime_slots_moved_total{model="tiny"} 1' in metrics.render()
    assert all(answers[i].done.cached_prompt_tokens == len(asked[i]) - 1 for i in answers)
    assert_each_as_alone(make_tiny_llm, asked, answers)
    histories = {slot.seq_id: slot.history for slot in scheduler._slots}
    assert histories[1][: len(asked[2])] == asked[2]  # the moved job's cache, with its answer after it
    left = histories[2]  # what the old slot held when the job moved: its prompt, still there to be reused
    assert len(left) >= len(asked[2]) - 1 and left == [*asked[2], *histories[1][len(asked[2]) :]][: len(left)]
    assert [slot.seq_id for slot in scheduler._slots] == [0, 1, 2, 3]
    assert all(len(answer.tokens()) == 8 for answer in answers.values())
