"""Reading prompts under load: a consumer that leaves in the middle of its prompt frees its slot at the next
step, and a short prompt admitted beside a long one is read (and answered) first."""

from __future__ import annotations

import asyncio

import pytest
from engine_support import SMALL_STEPS, Generation, collect
from scheduler_gate import FreeConstraint, StepGate, stepped_request, wait_until

from edge_runtime.engine.loaded_model import LoadedModel
from edge_runtime.engine.scheduler import BatchScheduler
from edge_runtime.engine.step_layout import fair_shares
from edge_runtime.engine.types import GenerationRequest

LONG_PROMPT_TOKENS = 200


def long_prompt(model: LoadedModel) -> list[int]:
    text = " ".join(["The river runs slowly through the valley and the farmers water their fields."] * 30)
    tokens = model.tokenize(text)[:LONG_PROMPT_TOKENS]
    assert len(tokens) == LONG_PROMPT_TOKENS
    return tokens


class FirstTokenOrder(FreeConstraint):
    """Notes `name` in `order` when its request samples its first token (on the scheduler thread, so `order`
    is the order of the scheduler's steps)."""

    def __init__(self, name: str, order: list[str]) -> None:
        super().__init__(frozenset())
        self.name = name
        self.order = order

    def accept_token(self, token_id: int) -> bool:
        if self.name not in self.order:
            self.order.append(self.name)
        return True


async def hold_scheduler(model: LoadedModel, gate: StepGate) -> asyncio.Task[Generation]:
    """A running request whose every step waits for the gate; returns once the scheduler stands at it."""
    holder = asyncio.create_task(collect(model, stepped_request(model, gate, max_tokens=30)))
    await asyncio.to_thread(gate.wait_arrival)
    return holder


async def admit_while_held(
    model: LoadedModel, gate: StepGate, request: GenerationRequest
) -> asyncio.Task[Generation]:
    """Queue `request` while the scheduler is held, then let one step through: it is admitted and reads the
    first chunk of its prompt."""
    scheduler = model.scheduler
    assert scheduler is not None
    task = asyncio.create_task(collect(model, request))
    await wait_until(lambda: scheduler.queue_depth == 1)
    await asyncio.to_thread(gate.step)
    return task


def test_a_consumer_leaving_mid_prompt_frees_its_slot_at_the_next_step(
    small_steps_llm: LoadedModel, small_steps_scheduler: BatchScheduler
) -> None:
    gate = StepGate(small_steps_llm.tokenizer.eog_ids)
    prompt = long_prompt(small_steps_llm)

    async def scenario() -> tuple[int, int, int]:
        holder = await hold_scheduler(small_steps_llm, gate)
        before = small_steps_scheduler.prompt_tokens_decoded
        reader = await admit_while_held(small_steps_llm, gate, GenerationRequest(prompt, max_tokens=4))
        busy_while_reading = small_steps_scheduler.busy_slots
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        assert small_steps_scheduler.abandoned == 1
        await asyncio.to_thread(gate.step)  # the next step goes on without it
        read = small_steps_scheduler.prompt_tokens_decoded - before
        busy_after = small_steps_scheduler.busy_slots
        gate.open()
        await holder
        return busy_while_reading, busy_after, read

    busy_while_reading, busy_after, read = asyncio.run(scenario())
    assert busy_while_reading == 2
    assert busy_after == 1
    assert 0 < read <= SMALL_STEPS.n_batch < LONG_PROMPT_TOKENS
    assert small_steps_scheduler.busy_slots == 0


def test_a_short_prompt_beside_a_long_one_gets_its_first_token_first(
    small_steps_llm: LoadedModel, small_steps_scheduler: BatchScheduler
) -> None:
    gate = StepGate(small_steps_llm.tokenizer.eog_ids)
    order: list[str] = []

    def recorded(prompt: list[int], name: str) -> GenerationRequest:
        return GenerationRequest(
            prompt, max_tokens=2, constraint_factory=lambda: FirstTokenOrder(name, order)
        )

    async def scenario() -> None:
        holder = await hold_scheduler(small_steps_llm, gate)
        long = await admit_while_held(small_steps_llm, gate, recorded(long_prompt(small_steps_llm), "long"))
        short_request = recorded(small_steps_llm.tokenize("Hi there"), "short")
        short = asyncio.create_task(collect(small_steps_llm, short_request))
        await wait_until(lambda: small_steps_scheduler.queue_depth == 1)
        gate.open()
        generations = await asyncio.gather(long, short, holder)
        assert generations[0].done.prompt_tokens == LONG_PROMPT_TOKENS

    asyncio.run(scenario())
    assert order == ["short", "long"]


@pytest.mark.parametrize(
    ("wants", "budget", "shares"),
    [
        ([500, 4], 31, [27, 4]),
        ([4, 500, 6], 32, [4, 22, 6]),
        ([100, 100], 31, [15, 16]),
        ([10, 10, 10], 512, [10, 10, 10]),
        ([5, 5], 0, [0, 0]),
        ([], 32, []),
    ],
)
def test_fair_shares_meet_small_wants_and_split_the_rest(
    wants: list[int], budget: int, shares: list[int]
) -> None:
    assert fair_shares(wants, budget) == shares
