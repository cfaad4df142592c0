"""Remote models against real upstreams on loopback (see upstream_processes.py). tests/server's helpers (a live
edge-runtime in a thread) are shared from there."""

from __future__ import annotations

import sys
from pathlib import Path

SERVER_TESTS = Path(__file__).resolve().parent.parent / "server"
if str(SERVER_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVER_TESTS))

import contextlib
from collections.abc import Iterator

import httpx
import pytest
from live_server import TINY_ID, RunningServer, serve, tiny_settings
from scripted_upstream import ScriptedUpstream, scripted_upstream
from upstream_processes import UpstreamProcess, edge_runtime_server, llama_cpp_server

from edge_runtime.store import ModelStore


@pytest.fixture(scope="session")
def llama_upstream(tiny_model_path: Path) -> Iterator[UpstreamProcess]:
    """llama-cpp-python's OpenAI server on the tiny model, serving it as `tiny-upstream`."""
    with llama_cpp_server(tiny_model_path) as upstream:
        yield upstream


@pytest.fixture(scope="session")
def upstream_store(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """A store holding the tiny model (linked), for edge-runtime upstream processes."""
    root = tmp_path_factory.mktemp("upstream-models")
    ModelStore(root).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    return root


@pytest.fixture(scope="session")
def edge_upstream(upstream_store: Path) -> Iterator[UpstreamProcess]:
    """A second edge-runtime process on the tiny model."""
    with edge_runtime_server(upstream_store, "--model", TINY_ID) as upstream:
        yield upstream


def front_server(models_dir: Path, **overrides: object) -> contextlib.AbstractContextManager[RunningServer]:
    """edge-runtime in a thread on a store holding remote models only (no model loads at start)."""
    return contextlib.contextmanager(serve)(tiny_settings(models_dir, preload=(), **overrides))


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedUpstream]:
    """A scripted upstream (scripted_upstream.py), one per test module."""
    with scripted_upstream() as upstream:
        yield upstream


@pytest.fixture
def http(front: RunningServer) -> Iterator[httpx.Client]:
    """A client of the module's `front` server (each module defines the remote models it serves)."""
    with front.client() as client:
        yield client
