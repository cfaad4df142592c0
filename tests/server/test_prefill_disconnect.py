"""A client that leaves while its long prompt is still being read frees its slot at the scheduler's next step,
not once the whole prompt has been read (the server used to wait for the first token before watching for the
client going away)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from live_server import TINY_ID, RunningServer, metric, post_raw
from scheduler_gate import StepGate, stepped_request

from edge_runtime.engine.loaded_model import LoadedModel

WAIT_S = 30.0


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the server never got there")
        time.sleep(0.005)


def served_tiny_llm(server: RunningServer) -> LoadedModel:
    """The server's own loaded tiny llm (loaded by a first request if an earlier test unloaded it)."""
    with server.client() as http:
        http.post("/v1/completions", json={"model": TINY_ID, "prompt": "Hi", "max_tokens": 1}).raise_for_status()
    loaded = server.app.state.server.manager.loaded()
    return next(model for model in loaded if model.model_id == TINY_ID and model.scheduler is not None)


@pytest.mark.parametrize("stream", [True, False])
def test_leaving_during_the_prompt_frees_the_slot_before_the_prompt_is_read(
    tiny_server: RunningServer, stream: bool
) -> None:
    model = served_tiny_llm(tiny_server)
    scheduler = model.scheduler
    assert scheduler is not None
    gate = StepGate(model.tokenizer.eog_ids)

    async def hold_the_scheduler() -> None:
        async for _ in model.generate(stepped_request(model, gate, max_tokens=40)):
            pass

    holder = threading.Thread(target=asyncio.run, args=(hold_the_scheduler(),))
    holder.start()
    try:
        gate.wait_arrival()
        text = " ".join(f"Line {i}: the river runs slowly through the valley." for i in range(20))
        n_prompt = len(model.tokenize(text))
        assert n_prompt > scheduler.prefill_chunk
        decoded_before, abandoned_before = scheduler.prompt_tokens_decoded, scheduler.abandoned
        payload = {"model": TINY_ID, "prompt": text, "max_tokens": 4, "stream": stream, "seed": len(text)}
        with post_raw(tiny_server.base_url, "/v1/completions", payload):
            wait_until(lambda: scheduler.queue_depth == 1)
            gate.step()  # admitted: the first chunk of its prompt is read
            assert scheduler.busy_slots == 2
        wait_until(lambda: scheduler.abandoned == abandoned_before + 1)
        gate.step()  # the next step goes on without it
        assert scheduler.busy_slots == 1
        assert scheduler.prompt_tokens_decoded - decoded_before < n_prompt
        with tiny_server.client() as http:
            assert metric(http, "edge_runtime_abandoned_generations_total") == scheduler.abandoned
            assert metric(http, "edge_runtime_prompt_tokens_decoded_total") == scheduler.prompt_tokens_decoded
    finally:
        gate.open()
        holder.join(WAIT_S)
    wait_until(lambda: scheduler.busy_slots == 0)
