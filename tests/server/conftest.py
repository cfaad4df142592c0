"""Session fixtures: a store holding the tiny model and a real uvicorn serving it on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from live_server import TINY_ID, RunningServer, serve, tiny_settings

from edge_runtime.store import ModelStore


@pytest.fixture(scope="session")
def tiny_store_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    root = tmp_path_factory.mktemp("server-models")
    ModelStore(root).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    return root


@pytest.fixture(scope="session")
def tiny_server(tiny_store_dir: Path) -> Iterator[RunningServer]:
    yield from serve(tiny_settings(tiny_store_dir))


@pytest.fixture()
def http(tiny_server: RunningServer) -> Iterator[httpx.Client]:
    with tiny_server.client() as client:
        yield client


@pytest.fixture()
def exit_stack() -> Iterator[ExitStack]:
    """Closes the SDK clients a test opens (`exit_stack.enter_context(openai.OpenAI(...))`) however it ends: a
    client left open keeps a pooled connection whose ResourceWarning surfaces in whichever later test the
    garbage collector happens to run in, failing that one."""
    with ExitStack() as stack:
        yield stack


TINY_EMBED_ID = "tiny-embed"


@pytest.fixture(scope="session")
def tiny_embed_id(tiny_server: RunningServer) -> str:
    """The tiny llm file registered once more as an embedding model (same GGUF, pooled hidden states)."""
    with tiny_server.client() as http:
        http.post(
            "/v1/models",
            json={"model_id": TINY_EMBED_ID, "provider_model_id": TINY_ID, "model_type": "embedding"},
        ).raise_for_status()
    return TINY_EMBED_ID
