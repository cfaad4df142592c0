"""`edge-runtime serve` as a user runs it: a subprocess that serves, logs each request, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from live_server import TINY_ID, free_port, no_special_tokens_bias, serve_command


def test_serve_answers_logs_and_stops_gracefully_on_sigterm(
    tiny_store_dir: Path, tiny_model_path: Path
) -> None:
    port = free_port()
    command = serve_command(tiny_store_dir, port, "--slots", "1", "--ctx", "256", "--grace", "120")
    env = {**os.environ, "EDGE_RUNTIME_API_KEYS": "secret"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            while True:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the server did not come up"
                try:
                    if http.get("/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert http.get("/v1/models").status_code == 401
            answer = http.post(
                "/v1/inference/completion",
                headers={"authorization": "Bearer secret"},
                json={"model_id": TINY_ID, "content": "hi", "sampling_params": {"max_tokens": 3}},
            )
            assert answer.status_code == 200
            with http.stream(
                "POST",
                "/v1/completions",
                headers={"authorization": "Bearer secret"},
                json={
                    "model": TINY_ID,
                    "prompt": "Count:",
                    "stream": True,
                    "max_tokens": None,
                    "logit_bias": no_special_tokens_bias(tiny_model_path),
                },
            ) as running:
                lines = running.iter_lines()
                assert next(lines).startswith("data: ")
                process.send_signal(signal.SIGTERM)
                rest = [line for line in lines if line]
        output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # the request running at SIGTERM was let finish (its context filled) before the server stopped
    assert rest[-1] == "data: [DONE]" and '"finish_reason":"length"' in rest[-2]
    # uvicorn finishes its graceful shutdown, then re-raises the signal so the exit status tells the parent.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    access = [line for line in output.splitlines() if "edge_runtime.access" in line]
    assert any(
        "path=/v1/inference/completion status=200" in line
        and f"model={TINY_ID}" in line
        and "completion_tokens=" in line
        for line in access
    ), output
