"""Client-library tests: the libraries extraction scripts use (openai's parse, langchain-openai, litellm,
instructor) against a real server on the tiny model. tests/server's helpers (live_server) and fixtures
(`tiny_server`) are shared from there, so that folder goes on sys.path and its fixtures are re-declared here."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_TESTS = Path(__file__).resolve().parent.parent / "server"
if str(SERVER_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVER_TESTS))

from live_server import TINY_ID, RunningServer, serve, tiny_settings

from edge_runtime.store import ModelStore

CLIENTS_N_CTX = 2048
"""A forced tool call puts the tool's whole schema into the chat template's prompt (960 tokens for
extraction_models.Person): with tests/server's 1024 the answer would be cut by the context, not the model."""


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("clients-models")
    ModelStore(root).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    yield from serve(tiny_settings(root, n_ctx=CLIENTS_N_CTX))


@pytest.fixture(scope="session")
def openai_base_url(tiny_server: RunningServer) -> str:
    return f"{tiny_server.base_url}/v1"


LITELLM_READONLY_WARNING = "ignore:.*using the `ReadOnly` qualifier:UserWarning"
"""litellm's own TypedDicts use ReadOnly, which pydantic warns about when litellm builds adapters for them."""


@pytest.fixture(scope="module")
def close_the_event_loops_litellm_leaves() -> Iterator[None]:
    """litellm leaves an event loop open that it no longer runs; collected during a later test, its
    ResourceWarning failed that test (tests/engine under `make test`). It is closed here, after the module."""
    yield
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.AbstractEventLoop) and not obj.is_running() and not obj.is_closed():
            obj.close()
