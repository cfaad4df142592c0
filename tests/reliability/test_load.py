"""A bounded load test: 32 clients for 20 s against `serve --slots 2 --queue 4`, streamed and non-streamed
requests on both API families. Every admitted request completes with its terminal event, every other one is
refused with the family's overload status and Retry-After, nothing else happens, and the engine is idle after."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from live_server import TINY_ID, wait_for_engine
from serve_process import serve_process

CLIENTS = 32
DURATION_S = 20.0
MAX_TOKENS = 12
SERVE_OPTIONS = ("--slots", "2", "--queue", "4", "--ctx", "512", "--threads", "1")
"""One decode thread: with llama.cpp's default of one per core, on this shared 2-core machine 28 requests were
admitted in the 20 s instead of about 200 (its threads spin-wait on each other when one is descheduled)."""


@dataclass(frozen=True)
class Outcome:
    kind: str
    status: int
    retry_after: str | None
    text: str


def _events(text: str) -> list[Any]:
    blocks = [block[len("data: ") :] for block in text.split("\n\n") if block.startswith("data: ")]
    return [block if block == "[DONE]" else json.loads(block) for block in blocks]


def _openai_stream_done(text: str) -> bool:
    events = _events(text)
    return events[-1] == "[DONE]" and events[-2]["choices"][-1]["finish_reason"] in ("stop", "length")


def _openai_answered(text: str) -> bool:
    return all(choice["finish_reason"] in ("stop", "length") for choice in json.loads(text)["choices"])


CHAT = [{"role": "user", "content": "Say something."}]
KINDS: dict[str, tuple[str, dict[str, Any], Callable[[str], bool]]] = {
    "openai chat stream": (
        "/v1/chat/completions",
        {"model": TINY_ID, "messages": CHAT, "max_tokens": MAX_TOKENS, "stream": True},
        _openai_stream_done,
    ),
    "openai chat": (
        "/v1/chat/completions",
        {"model": TINY_ID, "messages": CHAT, "max_tokens": MAX_TOKENS},
        _openai_answered,
    ),
    "openai completions stream": (
        "/v1/completions",
        {"model": TINY_ID, "prompt": "Once", "max_tokens": MAX_TOKENS, "stream": True},
        _openai_stream_done,
    ),
    "openai completions, two prompts": (
        "/v1/completions",
        {"model": TINY_ID, "prompt": ["Once", "Twice"], "max_tokens": MAX_TOKENS},
        _openai_answered,
    ),
    "native chat stream": (
        "/v1/inference/chat-completion",
        {
            "model_id": TINY_ID,
            "messages": CHAT,
            "stream": True,
            "sampling_params": {"max_tokens": MAX_TOKENS},
        },
        lambda text: _events(text)[-1]["event"]["event_type"] == "complete",
    ),
    "native chat": (
        "/v1/inference/chat-completion",
        {"model_id": TINY_ID, "messages": CHAT, "sampling_params": {"max_tokens": MAX_TOKENS}},
        lambda text: json.loads(text)["completion_message"]["role"] == "assistant",
    ),
    "native completion stream": (
        "/v1/inference/completion",
        {
            "model_id": TINY_ID,
            "content": "Once",
            "stream": True,
            "sampling_params": {"max_tokens": MAX_TOKENS},
        },
        lambda text: _events(text)[-1]["stop_reason"] in ("end_of_turn", "out_of_tokens"),
    ),
    "native completion": (
        "/v1/inference/completion",
        {"model_id": TINY_ID, "content": "Once", "sampling_params": {"max_tokens": MAX_TOKENS}},
        lambda text: json.loads(text)["stop_reason"] in ("end_of_turn", "out_of_tokens"),
    ),
}


def _client(base_url: str, index: int, deadline: float, outcomes: list[Outcome]) -> None:
    kinds = list(KINDS)
    turn = index
    with httpx.Client(base_url=base_url, timeout=120) as http:
        while time.monotonic() < deadline:
            kind = kinds[turn % len(kinds)]
            turn += 1
            path, body, _ = KINDS[kind]
            answer = http.post(path, json=body)
            outcomes.append(Outcome(kind, answer.status_code, answer.headers.get("retry-after"), answer.text))
            if answer.status_code != 200:
                time.sleep(random.uniform(0.0, 0.1))  # a refused client backs off a little before it retries


def test_32_clients_against_two_slots_and_a_queue_of_four(tiny_store: Path, tmp_path: Path) -> None:
    outcomes: list[Outcome] = []
    with serve_process(tiny_store, "--model", TINY_ID, *SERVE_OPTIONS) as server:
        deadline = time.monotonic() + DURATION_S
        clients = [
            threading.Thread(target=_client, args=(server.base_url, index, deadline, outcomes))
            for index in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=DURATION_S + 120)
        assert not any(client.is_alive() for client in clients), "a client is still waiting for its answer"
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            wait_for_engine(http, 0, 0, timeout_s=10)
            path, body, _ = KINDS["openai chat"]
            assert http.post(path, json=body).status_code == 200

    admitted = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status != 200]
    assert admitted and refused, f"{len(admitted)} admitted, {len(refused)} refused"
    for outcome in admitted:
        assert KINDS[outcome.kind][2](outcome.text), (outcome.kind, outcome.text[-300:])
    for outcome in refused:
        overloaded = 503 if outcome.kind.startswith("native") else 429
        assert (outcome.status, outcome.retry_after) == (overloaded, "1"), (outcome.kind, outcome.text[:300])
        error = json.loads(outcome.text)
        assert ("detail" in error) if overloaded == 503 else (error["error"]["code"] == "overloaded")
