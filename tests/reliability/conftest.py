"""Process-level tests: real `edge-runtime serve` subprocesses on the tiny model. tests/server's helpers
(live_server.py) are shared from here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))

from live_server import TINY_ID

from edge_runtime.store import ModelStore


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """A store holding the tiny model (linked), for serve subprocesses."""
    root = tmp_path_factory.mktemp("reliability-models")
    ModelStore(root).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    return root
