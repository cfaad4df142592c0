"""The wait queue bounds requests that wait for a slot, not requests that arrive together while slots are free."""

from __future__ import annotations

import asyncio
import dataclasses

from engine_support import TINY_CONFIG, collect

from edge_runtime.engine.types import GenerationRequest


def test_a_burst_fills_free_slots_before_the_queue(make_tiny_llm) -> None:  # type: ignore[no-untyped-def]
    model = make_tiny_llm(dataclasses.replace(TINY_CONFIG, n_slots=4, queue_size=2))
    prompt = model.tokenize("hello world")

    async def burst() -> list[str]:
        requests = [GenerationRequest(prompt, max_tokens=4) for _ in range(6)]
        results = await asyncio.gather(*(collect(model, r) for r in requests), return_exceptions=True)
        return [type(r).__name__ if isinstance(r, BaseException) else "ok" for r in results]

    assert asyncio.run(burst()) == ["ok"] * 6
