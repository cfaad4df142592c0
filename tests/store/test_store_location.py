"""Where the model store is when no `--models-dir` is given: per user, like Ollama's, whatever folder the
server or command starts in; each setting that moves it, and the one line that says where it is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.store import HOME_ENV, MODELS_DIR_ENV, models_dir_from_environment


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No store settings at all, and a home folder of the test's own; returns that home."""
    for name in (MODELS_DIR_ENV, HOME_ENV, "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_the_default_is_under_the_users_data_folder(bare_environment: Path) -> None:
    assert models_dir_from_environment() == (
        bare_environment / ".local" / "share" / "edge-runtime" / "models",
        "the default",
    )


def test_each_setting_moves_it_and_the_most_specific_wins(
    bare_environment: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # the XDG spec ignores a relative path
    assert models_dir_from_environment()[1] == "the default"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert models_dir_from_environment() == (tmp_path / "data" / "edge-runtime" / "models", "$XDG_DATA_HOME")
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "runtime"))
    assert models_dir_from_environment() == (tmp_path / "runtime" / "models", f"${HOME_ENV}")
    monkeypatch.setenv(MODELS_DIR_ENV, "~/store")
    assert models_dir_from_environment() == (bare_environment / "store", f"${MODELS_DIR_ENV}")


def test_tests_never_default_to_the_real_home(store_home: Path) -> None:
    assert models_dir_from_environment() == (store_home / "models", f"${HOME_ENV}")


def test_a_command_started_anywhere_uses_the_same_store(tmp_path: Path) -> None:
    """Run as a user would, from two different folders and with only HOME set: both name the per-user folder,
    and neither creates a ./models where it started."""
    environment = {k: v for k, v in os.environ.items() if k not in (MODELS_DIR_ENV, HOME_ENV, "XDG_DATA_HOME")}
    environment["HOME"] = str(tmp_path / "home")
    store = tmp_path / "home" / ".local" / "share" / "edge-runtime" / "models"
    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
        result = subprocess.run(
            [sys.executable, "-m", "edge_runtime.cli", "models", "list"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=folder,
            env=environment,
        )
        assert result.returncode == 0, result.stderr
        assert f"the model store folder {store} (the default) does not exist yet" in result.stdout
        assert not (folder / "models").exists()
