"""Constraints that let a test watch or hold the batch scheduler between two steps (engine and server tests
share them: tests/ is on sys.path through the root conftest)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import numpy as np

from edge_runtime.engine.loaded_model import LoadedModel
from edge_runtime.engine.types import GenerationRequest, SamplingParams

WAIT_S = 30.0
"""How long a test or a gate waits for the other side before calling it stuck (never reached when it works)."""


class FreeConstraint:
    """Allows every token but the model's end-of-generation ones, never forces nor finishes: subclasses watch
    or hold the scheduler thread in `accept_token`."""

    def __init__(self, eog_ids: frozenset[int]) -> None:
        self.eog_ids = eog_ids

    def accept_token(self, token_id: int) -> bool:
        return token_id not in self.eog_ids

    def fill_mask(self, mask: np.ndarray) -> None:
        mask[:] = True
        mask[list(self.eog_ids)] = False

    def forced_tokens(self) -> list[int]:
        return []

    def allows(self, tokens: list[int]) -> int:
        return next((i for i, token in enumerate(tokens) if token in self.eog_ids), len(tokens))

    def is_complete(self) -> bool:
        return False

    def is_finished(self) -> bool:
        return False


class StepGate(FreeConstraint):
    """Holds the scheduler thread at each token of its request until the test lets one more step through:
    the test then sees the scheduler between two steps."""

    def __init__(self, eog_ids: frozenset[int]) -> None:
        super().__init__(eog_ids)
        self._permits = threading.Semaphore(0)
        self._arrivals = threading.Semaphore(0)
        self._open = threading.Event()

    def accept_token(self, token_id: int) -> bool:
        if token_id in self.eog_ids:
            return False
        self._arrivals.release()
        if not self._open.is_set() and not self._permits.acquire(timeout=WAIT_S):
            raise TimeoutError("the test never let the scheduler go on")
        return True

    def wait_arrival(self) -> None:
        """Until the scheduler thread stands at the gate (it has decoded a step for this request)."""
        if not self._arrivals.acquire(timeout=WAIT_S):
            raise TimeoutError("the scheduler never reached the gate")

    def step(self) -> None:
        """Let the held step finish and wait until the scheduler stands at the gate again, one step later."""
        self._permits.release()
        self.wait_arrival()

    def open(self) -> None:
        """Let the scheduler run freely from now on."""
        self._open.set()
        self._permits.release()


def stepped_request(model: LoadedModel, gate: StepGate, max_tokens: int) -> GenerationRequest:
    """Greedy, its end-of-generation tokens banned, so the gate is asked exactly once per step."""
    no_end = {token: -1e9 for token in model.tokenizer.eog_ids}
    return GenerationRequest(
        model.tokenize("The assistant answers"),
        SamplingParams(temperature=0.0, logit_bias=no_end),
        max_tokens=max_tokens,
        constraint_factory=lambda: gate,
    )


async def wait_until(condition: Callable[[], bool]) -> None:
    """Polls `condition` from an event loop until it holds."""
    for _ in range(int(WAIT_S / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise TimeoutError("the scheduler never got there")
