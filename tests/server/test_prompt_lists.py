"""Completions with a list of prompts: every prompt answered, a cap on the choices one request may ask for, and
every choice cancelled when the client leaves (streamed or not, running or still waiting for a slot)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import (
    N_SLOTS,
    TINY_ID,
    RunningServer,
    metric,
    no_special_tokens_bias,
    post_raw,
    serve,
    tiny_settings,
    wait_for_engine,
)

from edge_runtime.api.translate_openai_completions import MAX_CHOICES_PER_REQUEST

LONG_CTX = 32768
"""Each prompt runs until this context is full: minutes for the whole list, unless it is cancelled."""


def _events(body: str) -> list[str]:
    return [line[len("data: ") :] for line in body.split("\n\n") if line.startswith("data: ")]


def test_a_list_of_prompts_answers_each_prompt_with_its_n_choices(http: httpx.Client) -> None:
    body = {"model": TINY_ID, "prompt": ["One", "Two", "Three"], "n": 2, "max_tokens": 3}
    answer = http.post("/v1/completions", json=body)
    assert answer.status_code == 200, answer.text
    assert sorted(choice["index"] for choice in answer.json()["choices"]) == list(range(6))
    streamed = http.post("/v1/completions", json={**body, "stream": True})
    events = _events(streamed.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert len({chunk["id"] for chunk in chunks}) == 1
    finished = sorted(
        c["index"] for chunk in chunks for c in chunk["choices"] if c["finish_reason"] is not None
    )
    assert finished == list(range(6))


@pytest.mark.parametrize(
    ("shape", "param"),
    [
        ({"prompt": ["p"] * (MAX_CHOICES_PER_REQUEST + 1)}, "prompt"),
        ({"prompt": [[1, 2]] * (MAX_CHOICES_PER_REQUEST // 2 + 1), "n": 2}, "prompt"),
        ({"prompt": "p", "n": MAX_CHOICES_PER_REQUEST + 1}, "n"),
        ({"prompt": [1, 2, 3], "n": 1, "best_of": MAX_CHOICES_PER_REQUEST + 1}, "best_of"),
    ],
)
def test_more_choices_than_the_cap_is_a_400_naming_the_parameter(
    http: httpx.Client, shape: dict[str, object], param: str
) -> None:
    answer = http.post("/v1/completions", json={"model": TINY_ID, "max_tokens": 1, **shape})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param
    assert str(MAX_CHOICES_PER_REQUEST) in error["message"]


@pytest.fixture(scope="module")
def long_server(tiny_store_dir: Path) -> Iterator[RunningServer]:
    yield from serve(tiny_settings(tiny_store_dir, n_ctx=LONG_CTX))


def _long_list(model_path: Path, *, stream: bool) -> dict[str, object]:
    return {
        "model": TINY_ID,
        "prompt": [f"Count {i}:" for i in range(16)],
        "max_tokens": None,
        "stream": stream,
        "logit_bias": no_special_tokens_bias(model_path),
    }


@pytest.mark.parametrize("stream", [False, True], ids=["non-streamed", "streamed"])
def test_client_leaving_cancels_every_prompt_of_a_list(
    long_server: RunningServer, tiny_model_path: Path, stream: bool
) -> None:
    with long_server.client() as http:
        sock = post_raw(long_server.base_url, "/v1/completions", _long_list(tiny_model_path, stream=stream))
        try:
            # every slot runs one of its prompts and the next one waits for a slot
            wait_for_engine(http, N_SLOTS, 1)
            if stream:
                assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        finally:
            sock.close()
        # the running prompts and the ones still waiting for a slot are all cancelled, not run to the end
        wait_for_engine(http, 0, 0)
        answer = http.post("/v1/completions", json={"model": TINY_ID, "prompt": ["a", "b"], "max_tokens": 2})
        assert answer.status_code == 200
        assert metric(http, "edge_runtime_busy_slots") == 0
