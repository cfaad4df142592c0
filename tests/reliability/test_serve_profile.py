"""`edge-runtime serve --profile small` as a user runs it: the profile's settings are what the server runs with
(flags override them) and the model file is mapped. (A model too big for the profile: test_cli_errors.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from live_server import TINY_ID
from serve_process import serve_process

from edge_runtime.engine.huge_pages import HugePages
from edge_runtime.store import ModelStore


def test_small_profile_serves_with_its_settings_and_maps_the_model(tiny_store: Path) -> None:
    store = ModelStore(tiny_store)
    model_file = store.path_of(store.get(TINY_ID))
    with serve_process(tiny_store, "--profile", "small", "--model", TINY_ID, "--threads", "1") as server:
        with server.client() as http:
            (provider,) = http.get("/v1/providers").json()["data"]
            config = provider["config"]
            assert config["profile"] == "small" and config["n_slots"] == 1 and config["n_ctx"] == 2048
            assert config["kv_cache_type"] == "q8_0" and config["mmap"] is True
            assert config["memory_budget_bytes"] == 1 << 30 and config["swa_full"] is False
            assert config["kv_unified"] is False and config["huge_pages"] is True
            answer = http.post("/v1/completions", json={"model": TINY_ID, "prompt": "Hi", "max_tokens": 3})
            assert answer.status_code == 200, answer.text
        maps = Path(f"/proc/{server.process.pid}/maps").read_text()
        assert str(model_file) in maps


def _huge_page_bytes(http: httpx.Client) -> float:
    lines = http.get("/metrics").text.splitlines()
    (line,) = [line for line in lines if line.startswith("edge_runtime_huge_page_bytes ")]
    return float(line.split()[1])


def test_an_idle_server_moves_its_memory_onto_huge_pages(tiny_store: Path) -> None:
    """The scheduler's idle pass (engine/huge_pages.py) runs in the served process, and /metrics shows it."""
    with serve_process(tiny_store, "--model", TINY_ID, "--threads", "1") as server, server.client() as http:
        (provider,) = http.get("/v1/providers").json()["data"]
        assert provider["config"]["huge_pages"] is True
        answer = http.post("/v1/completions", json={"model": TINY_ID, "prompt": "Hi", "max_tokens": 3})
        assert answer.status_code == 200, answer.text
        assert _huge_page_bytes(http) >= 0  # the gauge is there on every kernel
        if HugePages.open() is None:
            return  # no MADV_COLLAPSE or THP here: the pass has nothing to do
        deadline = time.monotonic() + 60
        while _huge_page_bytes(http) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _huge_page_bytes(http) > 0, "no memory on huge pages a minute after the server went idle"


def test_flags_override_the_profile(tiny_store: Path) -> None:
    arguments = ("--profile", "small", "--slots", "2", "--ctx", "512", "--swa-full", "--kv-unified")
    arguments += ("--no-huge-pages",)
    with serve_process(tiny_store, *arguments, "--model", TINY_ID) as server, server.client() as http:
        (provider,) = http.get("/v1/providers").json()["data"]
        answer = http.post("/v1/completions", json={"model": TINY_ID, "prompt": "Hi", "max_tokens": 3, "n": 2})
        assert answer.status_code == 200, answer.text
    assert provider["config"]["n_slots"] == 2 and provider["config"]["n_ctx"] == 512
    assert provider["config"]["mmap"] is True and provider["config"]["swa_full"] is True
    assert provider["config"]["kv_unified"] is True and provider["config"]["huge_pages"] is False
