"""SIGTERM with requests still running past the grace period: each ends with a last word in its family's shape
(a stream's error event, [DONE] too on OpenAI; a 503 JSON error with Retry-After) and the process exits 0."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
from live_server import TINY_ID, no_special_tokens_bias, wait_for_engine
from serve_process import serve_process

NATIVE_LONG = {
    "model_id": TINY_ID,
    "content": "Count:",
    "sampling_params": {"max_tokens": 0},
    # greedy decoding repeats a digit until the context is full: minutes at this context size
    "response_format": {"type": "grammar", "bnf": 'root ::= [0-9]+ "z"'},
}


def _events(text: str) -> list[str]:
    return [block[len("data: ") :] for block in text.split("\n\n") if block.startswith("data: ")]


def test_sigterm_past_the_grace_ends_every_request_in_its_family_shape(
    tiny_store: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    openai_long = {
        "model": TINY_ID,
        "prompt": "Count:",
        "max_tokens": None,
        "logit_bias": no_special_tokens_bias(tiny_model_path),
    }
    requests = {
        "openai stream": ("/v1/completions", {**openai_long, "stream": True}),
        "native stream": ("/v1/inference/completion", {**NATIVE_LONG, "stream": True}),
        "openai": ("/v1/completions", openai_long),
        "native": ("/v1/inference/completion", NATIVE_LONG),
    }
    answers: dict[str, tuple[int, dict[str, str], str]] = {}
    streaming = {name: threading.Event() for name in requests if name.endswith("stream")}
    options = ("--slots", "4", "--queue", "4", "--ctx", "32768", "--grace", "1")
    with serve_process(tiny_store, "--model", TINY_ID, *options) as server:

        def send(name: str, path: str, body: dict[str, Any]) -> None:
            with (
                httpx.Client(base_url=server.base_url, timeout=120) as client,
                client.stream("POST", path, json=body) as response,
            ):
                chunks = response.iter_text()
                text = next(chunks, "")
                if name in streaming:
                    streaming[name].set()  # its first event is out: the stream has begun
                text += "".join(chunks)
                answers[name] = (response.status_code, dict(response.headers), text)

        threads = [threading.Thread(target=send, args=(name, *request)) for name, request in requests.items()]
        for thread in threads:
            thread.start()
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            wait_for_engine(http, 4, 0)
        for started in streaming.values():
            assert started.wait(timeout=120)
        server.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=120)
        assert server.process.wait(timeout=120) == 0, server.output()
        output = server.output()

    assert set(answers) == set(requests), output
    openai_events = _events(answers["openai stream"][2])
    assert openai_events[-1] == "[DONE]", openai_events[-3:]
    error = json.loads(openai_events[-2])["error"]
    assert error["code"] == "shutting_down" and error["type"] == "server_error" and error["message"]

    native_last = json.loads(_events(answers["native stream"][2])[-1])
    assert set(native_last) == {"error"} and native_last["error"]["message"]

    for name in ("openai", "native"):
        status, headers, text = answers[name]
        assert status == 503, (name, status, text[:300])
        assert headers["content-type"] == "application/json"
        assert headers["retry-after"] == "1"
    assert json.loads(answers["openai"][2])["error"]["code"] == "shutting_down"
    assert set(json.loads(answers["native"][2])) == {"detail"}
    assert "Application shutdown complete" in output
