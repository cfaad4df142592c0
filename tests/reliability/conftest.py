"""Process-level tests: real `edge-runtime serve` subprocesses (several on one store, signalled, loaded,
starved of disk, their files truncated) and real imports. tests/server's helpers (live_server: free ports,
the tiny model's id) and tests/store's (gguf_builder) are shared from there, so those folders go on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SERVER_TESTS = Path(__file__).resolve().parent.parent / "server"
STORE_TESTS = SERVER_TESTS.parent / "store"
for helpers in (SERVER_TESTS, STORE_TESTS):
    if str(helpers) not in sys.path:
        sys.path.insert(0, str(helpers))

from live_server import TINY_ID

from edge_runtime.store import ModelStore


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """A store holding the tiny model (linked: the test model is read-only), for serve subprocesses."""
    root = tmp_path_factory.mktemp("reliability-models")
    ModelStore(root).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    return root
