"""`--idle-unload`: a served model nobody uses is unloaded, and the next request loads it again."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from live_server import TINY_ID, no_special_tokens_bias, serve, tiny_settings

from edge_runtime.store import ModelStore


def _unloads(caplog: pytest.LogCaptureFixture) -> int:
    return sum("idle for" in record.getMessage() for record in caplog.records)


def test_idle_model_is_unloaded_then_served_again(
    tmp_path: Path, tiny_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_runtime.engine.manager")
    ModelStore(tmp_path).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    body = {  # the tiny model samples at random: an end token may not cut the answer short
        "model": TINY_ID,
        "prompt": "hello",
        "max_tokens": 3,
        "logit_bias": no_special_tokens_bias(tiny_model_path),
    }
    for server in serve(tiny_settings(tmp_path, idle_unload_s=0.3)):
        with server.client() as http:
            assert http.post("/v1/completions", json=body).status_code == 200
            deadline = time.monotonic() + 10
            while _unloads(caplog) == 0:
                assert time.monotonic() < deadline, "the idle model was never unloaded"
                time.sleep(0.05)
            again = http.post("/v1/completions", json=body)
            assert again.status_code == 200 and again.json()["usage"]["completion_tokens"] == 3
