"""The vocabulary index cache beside a model: a damaged cache is rebuilt (the grammar request still answers),
and a burst of cold grammar requests builds the index once."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from live_server import TINY_ID, serve, tiny_settings

from edge_runtime.grammar import Vocabulary
from edge_runtime.store import ModelStore

CACHE_LOGGER = "edge_runtime.engine.vocab_cache"
BURST = 8
GRAMMAR_REQUEST = {
    "model_id": TINY_ID,
    "content": "Number:",
    "response_format": {"type": "json_schema", "json_schema": {"type": "integer"}},
    "sampling_params": {"max_tokens": 4},
}


@pytest.fixture()
def fresh_store(tmp_path: Path, tiny_model_path: Path) -> Path:
    """A store of its own, so its vocabulary cache starts cold."""
    root = tmp_path / "models"
    ModelStore(root).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    return root


def _grammar_request(http: httpx.Client) -> int:
    return http.post("/v1/inference/completion", json=GRAMMAR_REQUEST).status_code


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == CACHE_LOGGER and text in r.getMessage()]


@pytest.mark.parametrize("damage", ["truncate", "flip-a-byte"])
def test_a_damaged_cache_is_rebuilt(fresh_store: Path, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    for server in serve(tiny_settings(fresh_store)):
        with server.client() as http:
            assert _grammar_request(http) == 200
    (cache,) = fresh_store.glob(".vocab-*.npz")
    data = bytearray(cache.read_bytes())
    if damage == "truncate":
        del data[len(data) // 2 :]
    else:
        data[-100] ^= 0xFF
    cache.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger=CACHE_LOGGER):
        for server in serve(tiny_settings(fresh_store)):
            with server.client() as http:
                assert _grammar_request(http) == 200
                assert _grammar_request(http) == 200
    assert len(_messages(caplog, "rebuilding the vocabulary index")) == 1
    assert len(Vocabulary.load(cache).token_bytes) > 0


def test_a_burst_of_cold_grammar_requests_builds_the_index_once(
    fresh_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=CACHE_LOGGER):
        for server in serve(tiny_settings(fresh_store, queue_size=BURST)):
            with server.client() as http, ThreadPoolExecutor(BURST) as pool:
                statuses = list(pool.map(lambda _: _grammar_request(http), range(BURST)))
    assert statuses == [200] * BURST
    assert len(_messages(caplog, "built the vocabulary index")) == 1
    assert _messages(caplog, "could not cache") == []
    cache_files = sorted(path.name for path in fresh_store.iterdir() if path.name.startswith(".vocab-"))
    assert [name.rsplit(".", 1)[-1] for name in cache_files] == ["npz", "lock"]  # and no temp file
