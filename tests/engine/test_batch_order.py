"""A step's batch reaches llama.cpp in sequence order, so that sequences in consecutive slots share one forward
pass over a cache with a stream per sequence, and every job still reads its own sequence's logits."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from engine_support import TINY_CONFIG, Generation, collect, prose

from edge_runtime.engine.llama_handles import Batch
from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.types import GenerationRequest, TokenLogprob


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


def ask(prompt: list[int]) -> GenerationRequest:
    return GenerationRequest(prompt, max_tokens=3, logprobs=5)


def first_top(generation: Generation) -> dict[int, float]:
    entry = generation.pieces[0].logprobs[0]  # type: ignore[index]
    assert isinstance(entry, TokenLogprob)
    return {token: logprob for token, _, logprob in entry.top}


def test_jobs_in_slots_taken_in_reverse_order_read_their_own_logits(
    tiny_llm: LoadedModel, make_tiny_llm: Callable[[EngineConfig], LoadedModel]
) -> None:
    asked = [prose(tiny_llm, label, 24, first=True) for label in (" Alpha", " Bravo", " Charlie", " Delta")]

    async def all_at_once(order: list[int]) -> dict[int, Generation]:
        answers = await asyncio.gather(*(collect(tiny_llm, ask(asked[i])) for i in order))
        return dict(zip(order, answers, strict=True))

    asyncio.run(all_at_once([0, 1, 2, 3]))  # each prompt now sits in the slot of its index
    answers = asyncio.run(all_at_once([3, 2, 1, 0]))  # admitted last slot first: the batch comes in reversed

    alone = make_tiny_llm(dataclasses.replace(TINY_CONFIG, n_slots=1))
    for index, prompt in enumerate(asked):
        assert answers[index].done.cached_prompt_tokens == len(prompt) - 1  # found in its own slot
        expected, got = first_top(asyncio.run(collect(alone, ask(prompt)))), first_top(answers[index])
        assert expected.keys() == got.keys()
        assert all(abs(expected[token] - got[token]) < 0.02 for token in expected)
