"""What a user gets wrong on the command line is one line saying what and how to fix it, and exit code 2:
`serve --model` naming no model or a broken file, and a `--models-dir` that is a file or is missing, for
`serve` and the `models` subcommands. Real processes, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gguf_builder import gguf_bytes, llm_metadata
from live_server import TINY_ID, free_port

from edge_runtime.store import MODELS_DIR_ENV, ModelStore

EXIT_USAGE = 2


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != MODELS_DIR_ENV}
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**environment, **(env or {})},
    )


def _serve(models_dir: Path | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`serve` expected to refuse before it listens (the port is free, nothing answers on it)."""
    store = ("--models-dir", str(models_dir)) if models_dir is not None else ()
    return _cli("serve", *store, "--port", str(free_port()), *args, env=env)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == EXIT_USAGE, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edge-runtime: error: ")
    return lines[0]


def test_serving_an_unknown_model_is_one_line_listing_the_ids(tiny_store: Path) -> None:
    line = _one_error_line(_serve(tiny_store, "--model", "nope"))
    assert "--model nope" in line and f"it has {TINY_ID}" in line and "`edge-runtime models list`" in line


def test_serving_a_model_whose_file_changed_is_one_line_naming_the_model(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    store = ModelStore(tmp_path / "models")
    entry = store.import_model(tiny_model_path, model_id="broken")
    path = store.path_of(entry)
    path.chmod(0o644)
    os.truncate(path, 4096)
    line = _one_error_line(_serve(store.root, "--model", "broken"))
    assert "model 'broken'" in line and "import the model again" in line


def test_serving_a_model_llama_cpp_cannot_load_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A GGUF with a readable header and no tensors passes the checks before start, then fails to load in the
    lifespan: the server's log says why in its own lines, and `serve` ends with one error line and exit 2."""
    source = tmp_path / "hollow.gguf"
    source.write_bytes(gguf_bytes(llm_metadata("llama")))
    store = ModelStore(tmp_path / "models")
    store.import_model(source, model_id="hollow")
    result = _serve(store.root, "--model", "hollow")
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "Traceback" not in result.stderr and "Application startup failed" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("edge-runtime: error: the server did not start: model 'hollow' is unavailable")
    assert "model 'hollow' did not load" in result.stderr


def test_a_model_too_big_for_the_small_profile_is_refused_before_loading(tiny_store: Path) -> None:
    """4 Mi tokens of context: the estimate's attention scores alone pass the small profile's 1 GiB budget, so
    llama.cpp is never asked (it would try to allocate the cache)."""
    result = _serve(tiny_store, "--profile", "small", "--ctx", str(1 << 22), "--model", TINY_ID)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"edge-runtime: error: the server did not start: model '{TINY_ID}' needs about")
    assert "memory budget of 1024 MiB" in last and "it was not loaded" in last


@pytest.mark.parametrize(
    "command",
    [("serve", "--port", "1"), ("models", "list"), ("models", "show", TINY_ID), ("models", "rm", TINY_ID)],
)
def test_a_models_dir_that_is_a_file_is_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("")
    line = _one_error_line(_cli("--models-dir", str(not_a_folder), *command))
    assert f"{not_a_folder} (--models-dir) is a file, not a folder" in line


def test_importing_into_a_models_dir_that_is_a_file_is_one_line(tmp_path: Path, tiny_model_path: Path) -> None:
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("")
    line = _one_error_line(_cli("models", "import", str(tiny_model_path), "--models-dir", str(not_a_folder)))
    assert "is a file, not a folder" in line


@pytest.mark.parametrize("command", [("models", "show", TINY_ID), ("models", "rm", TINY_ID)])
def test_reading_a_missing_models_dir_is_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    missing = tmp_path / "nowhere"
    line = _one_error_line(_cli(*command, "--models-dir", str(missing)))
    assert f"{missing} (--models-dir) does not exist" in line and "models import PATH" in line
    assert not missing.exists()


def test_listing_a_missing_models_dir_says_it_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = _cli("models", "list", "--models-dir", str(missing))
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("no models: ") and f"{missing} (--models-dir) does not exist" in result.stdout
    assert not missing.exists()


def test_serving_a_missing_models_dir_the_user_named_is_refused(tmp_path: Path) -> None:
    """A named folder is not created: a typo would otherwise serve an empty store (and import the default
    model into it)."""
    missing = tmp_path / "nowhere"
    line = _one_error_line(_serve(missing))
    assert f"{missing} (--models-dir) does not exist" in line
    from_env = _one_error_line(_serve(None, env={MODELS_DIR_ENV: str(missing)}))
    assert f"{missing} (${MODELS_DIR_ENV}) does not exist" in from_env
    assert not missing.exists()


@pytest.mark.parametrize("value", ["-1", "17"])
def test_a_draft_length_out_of_range_is_one_line_naming_the_range(tiny_store: Path, value: str) -> None:
    line = _one_error_line(_serve(tiny_store, "--draft-tokens", value))
    assert f"--draft-tokens must be between 0 and 16, got {value}" in line
