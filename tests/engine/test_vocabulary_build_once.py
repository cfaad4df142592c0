"""Two tokenizers of one model file (an llm and its embedding view load it twice) asked for the grammar index by
eight threads at once: one build, one shared index per tokenizer, one cache file."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_runtime.engine.llama_handles import LlamaModel
from edge_runtime.engine.tokenizer import Tokenizer
from edge_runtime.grammar import Vocabulary

THREADS = 8


@pytest.fixture()
def two_handles(tmp_path: Path, tiny_model_path: Path) -> Iterator[list[LlamaModel]]:
    """The tiny model linked into a folder of its own, so the cache beside it starts cold."""
    path = tmp_path / "tiny.gguf"
    path.hardlink_to(tiny_model_path)
    handles = [LlamaModel(path), LlamaModel(path)]
    yield handles
    for handle in handles:
        handle.close()


def test_concurrent_cold_requests_build_once(
    two_handles: list[LlamaModel], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokenizers = [Tokenizer(handle) for handle in two_handles]
    start = threading.Barrier(THREADS)
    results: list[tuple[int, Vocabulary]] = []

    def ask(n: int) -> None:
        start.wait()
        results.append((n % 2, tokenizers[n % 2].vocabulary(tmp_path)))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(THREADS)]
    with caplog.at_level(logging.INFO, logger="edge_runtime.engine.vocab_cache"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    builds = [r for r in caplog.records if "built the vocabulary index" in r.getMessage()]
    assert len(builds) == 1 and not [r for r in caplog.records if r.levelno >= logging.WARNING]
    for which in (0, 1):
        assert len({id(vocabulary) for n, vocabulary in results if n == which}) == 1
    assert len(list(tmp_path.glob(".vocab-*.npz"))) == 1 and not list(tmp_path.glob("*.tmp"))
