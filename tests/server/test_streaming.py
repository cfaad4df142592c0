"""SSE framing of both families, a client that leaves mid-stream, and a burst beyond the queue bound."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import (
    N_SLOTS,
    QUEUE_SIZE,
    TINY_ID,
    RunningServer,
    no_special_tokens_bias,
    serve,
    tiny_settings,
)

LONG = {"max_tokens": 200}


def _events(body: str) -> list[str]:
    assert body.endswith("\n\n")
    blocks = body[:-2].split("\n\n")
    assert all(block.startswith("data: ") and "\n" not in block for block in blocks), blocks
    return [block[len("data: ") :] for block in blocks]


def test_native_sse_framing(http: httpx.Client) -> None:
    with http.stream(
        "POST",
        "/v1/inference/chat-completion",
        json={
            "model_id": TINY_ID,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "sampling_params": {"max_tokens": 6},
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = [json.loads(e) for e in _events(body)]
    assert "[DONE]" not in body and "event:" not in body
    assert events[0]["event"]["event_type"] == "start" and events[0]["event"]["delta"] == {
        "type": "text",
        "text": "",
    }
    assert (
        events[-1]["event"]["event_type"] == "complete"
        and events[-1]["metrics"][0]["metric"] == "prompt_tokens"
    )
    assert all(set(e) == {"metrics", "event"} for e in events)


def test_openai_sse_framing_ends_with_done(http: httpx.Client) -> None:
    with http.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": TINY_ID,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "max_tokens": 6,
            "stream_options": {"include_usage": True},
        },
    ) as response:
        body = response.read().decode()
    events = _events(body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert len({c["id"] for c in chunks}) == 1


def _metric(http: httpx.Client, name: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(f'{name}{{model="{TINY_ID}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_disconnect_mid_stream_cancels_the_generation(
    http: httpx.Client, tiny_server: RunningServer, tiny_model_path: Path
) -> None:
    generated_before = _metric(http, "edge_runtime_generated_tokens_total")
    body = {
        "model": TINY_ID,
        "prompt": "Count:",
        "stream": True,
        "max_tokens": None,
        "logit_bias": no_special_tokens_bias(tiny_model_path),
    }
    for _ in range(N_SLOTS + 1):
        with (
            tiny_server.client() as leaving,
            leaving.stream("POST", "/v1/completions", json=body) as response,
        ):
            first = next(response.iter_lines())
            assert first.startswith("data: ")
    deadline = time.monotonic() + 60
    while _metric(http, "edge_runtime_busy_slots") != 0.0:
        assert time.monotonic() < deadline, "slots still busy after the clients left"
        time.sleep(0.05)
    # a generation that ran to the end would have reported its (context-filling) tokens; cancelled ones never do
    assert _metric(http, "edge_runtime_generated_tokens_total") == generated_before
    answer = http.post("/v1/completions", json={"model": TINY_ID, "prompt": "ok", "max_tokens": 3})
    assert answer.status_code == 200


@pytest.fixture(scope="module")
def small_queue_server(tiny_store_dir: Path) -> Iterator[RunningServer]:
    yield from serve(tiny_settings(tiny_store_dir, n_slots=1, queue_size=1, n_ctx=512))


async def _burst(base_url: str, path: str, body: dict[str, object], count: int) -> list[tuple[int, str, str]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def one() -> tuple[int, str, str]:
            async with client.stream("POST", path, json=body) as response:
                text = (await response.aread()).decode()
                return response.status_code, response.headers.get("retry-after", ""), text

        return list(await asyncio.gather(*(one() for _ in range(count))))


@pytest.mark.parametrize(
    ("family", "path", "body", "refused_status"),
    [
        (
            "native",
            "/v1/inference/completion",
            {"model_id": TINY_ID, "content": "Go", "stream": True, "sampling_params": {"max_tokens": 400}},
            503,
        ),
        (
            "openai",
            "/v1/completions",
            {"model": TINY_ID, "prompt": "Go", "stream": True, "max_tokens": 400},
            429,
        ),
    ],
)
def test_burst_beyond_the_queue_is_refused_and_admitted_requests_complete(
    small_queue_server: RunningServer, family: str, path: str, body: dict[str, object], refused_status: int
) -> None:
    results = asyncio.run(_burst(small_queue_server.base_url, path, body, 8))
    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) <= {200, refused_status}
    assert statuses.count(200) >= 1 + QUEUE_SIZE - 1 and refused_status in statuses
    for status, retry_after, text in results:
        if status == refused_status:
            assert retry_after == "1"
            error = json.loads(text)
            assert ("detail" in error) if family == "native" else (error["error"]["code"] == "overloaded")
        else:
            events = _events(text)
            if family == "native":
                assert json.loads(events[-1])["stop_reason"] in ("end_of_turn", "out_of_tokens")
            else:
                assert events[-1] == "[DONE]"
                assert json.loads(events[-2])["choices"][0]["finish_reason"] in ("stop", "length")
