"""The scheduler's bookkeeping: a consumer that goes away frees its slot, and a full wait queue refuses work."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest
from engine_support import TINY_CONFIG, collect
from scheduler_gate import WAIT_S, FreeConstraint, wait_until

from edge_runtime.engine.loaded_model import LoadedModel
from edge_runtime.engine.types import GenerationRequest, SamplingParams, TextPiece
from edge_runtime.errors import Overloaded


class GateConstraint(FreeConstraint):
    """Holds the scheduler thread at its `hold_at`-th token until opened: a request that stays running while
    the test looks at the scheduler."""

    def __init__(self, hold_at: int, eog_ids: frozenset[int]) -> None:
        super().__init__(eog_ids)
        self.hold_at = hold_at
        self.accepted = 0
        self.reached = threading.Event()
        self.opened = threading.Event()

    def accept_token(self, token_id: int) -> bool:
        if token_id in self.eog_ids:
            return False
        self.accepted += 1
        if self.accepted == self.hold_at:
            self.reached.set()
            if not self.opened.wait(WAIT_S):
                raise TimeoutError("the test never opened the gate")
        return True


def gated_request(model: LoadedModel, gate: GateConstraint, max_tokens: int) -> GenerationRequest:
    return GenerationRequest(
        model.tokenize("The assistant answers"),
        SamplingParams(temperature=0.8, seed=1),
        max_tokens=max_tokens,
        constraint_factory=lambda: gate,
    )


def test_closing_the_stream_frees_the_slot(tiny_llm: LoadedModel) -> None:
    scheduler = tiny_llm.scheduler
    assert scheduler is not None
    gate = GateConstraint(hold_at=3, eog_ids=tiny_llm.tokenizer.eog_ids)

    async def scenario() -> int:
        stream = tiny_llm.generate(gated_request(tiny_llm, gate, max_tokens=200))
        first = await anext(stream)
        assert isinstance(first, TextPiece)
        await asyncio.to_thread(gate.reached.wait, WAIT_S)
        assert scheduler.busy_slots == 1
        await stream.aclose()
        gate.opened.set()
        await wait_until(lambda: scheduler.busy_slots == 0)
        after = await collect(tiny_llm, GenerationRequest(tiny_llm.tokenize("The team"), max_tokens=7))
        return len(after.tokens())

    assert asyncio.run(scenario()) == 7
    assert gate.accepted < 200
    assert scheduler.busy_slots == 0


def test_cancelled_task_frees_the_slot(tiny_llm: LoadedModel) -> None:
    scheduler = tiny_llm.scheduler
    assert scheduler is not None
    gate = GateConstraint(hold_at=2, eog_ids=tiny_llm.tokenizer.eog_ids)

    async def scenario() -> None:
        task = asyncio.create_task(collect(tiny_llm, gated_request(tiny_llm, gate, max_tokens=200)))
        await asyncio.to_thread(gate.reached.wait, WAIT_S)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.opened.set()
        await wait_until(lambda: scheduler.busy_slots == 0)

    asyncio.run(scenario())
    assert gate.accepted < 200


def test_full_queue_raises_overloaded(make_tiny_llm) -> None:  # type: ignore[no-untyped-def]
    config = dataclasses.replace(TINY_CONFIG, n_slots=1, queue_size=2)
    model: LoadedModel = make_tiny_llm(config)
    scheduler = model.scheduler
    assert scheduler is not None
    gate = GateConstraint(hold_at=1, eog_ids=model.tokenizer.eog_ids)
    prompt = model.tokenize("What is the weather like today?")

    async def scenario() -> list[int]:
        running = asyncio.create_task(collect(model, gated_request(model, gate, max_tokens=5)))
        await asyncio.to_thread(gate.reached.wait, WAIT_S)
        waiting = [
            asyncio.create_task(collect(model, GenerationRequest(prompt, max_tokens=4))) for _ in range(2)
        ]
        await wait_until(lambda: scheduler.queue_depth == 2)
        with pytest.raises(Overloaded):
            await collect(model, GenerationRequest(prompt, max_tokens=4))
        gate.opened.set()
        done = await asyncio.gather(running, *waiting)
        return [len(generation.tokens()) for generation in done]

    assert asyncio.run(scenario()) == [5, 4, 4]
    assert scheduler.queue_depth == 0 and scheduler.busy_slots == 0
