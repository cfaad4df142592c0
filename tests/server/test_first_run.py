"""A server started on an empty store imports every packaged model whose extra is installed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from live_server import serve, tiny_settings

from edge_runtime.store import PACKAGED_MODELS


@pytest.mark.gemma
@pytest.mark.smollm2
def test_first_run_imports_the_base_and_the_instruct_model(
    tmp_path: Path, gemma_model_path: Path, smollm2_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Gemma (the default, a base model) and SmolLM2 (an instruct model to chat with); the log says where
    the store is."""
    store = tmp_path / "models"
    settings = tiny_settings(store, preload=(), import_default_model=True)
    with caplog.at_level("INFO", logger="edge_runtime.server"):
        for running in serve(settings):
            with running.client() as http:
                served = {model["identifier"] for model in http.get("/v1/models").json()["data"]}
    assert {model.id for model in PACKAGED_MODELS.values()} <= served
    assert any(f"model store: {store.resolve()} (2 models)" in line for line in caplog.messages)


def test_without_models_dir_the_server_serves_the_per_user_store_and_says_where(
    tmp_path: Path, store_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The session's $EDGE_RUNTIME_HOME stands in for the user's data folder (tests/conftest.py)."""
    settings = replace(tiny_settings(tmp_path / "unused"), models_dir=None, preload=())
    with caplog.at_level("INFO", logger="edge_runtime.server"):
        for running in serve(settings):
            with running.client() as http:
                assert http.get("/v1/health").status_code == 200
    store = (store_home / "models").resolve()
    assert any(line.startswith(f"model store: {store} (") for line in caplog.messages)
    assert not (tmp_path / "unused").exists()
