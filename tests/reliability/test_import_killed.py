"""`edge-runtime models import` killed mid-copy: its temp file is gone as soon as the store is next opened,
not left (at the size of a model) until someone imports again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge_runtime.store import ModelStore
from edge_runtime.store.registry import TEMP_SUFFIX

PADDING_BYTES = 2 << 30
"""Sparse zeros after the tiny model's tensors: a valid GGUF far too big to copy before the kill."""


def _temps(root: Path) -> list[Path]:
    return [p for p in root.glob(f".*{TEMP_SUFFIX}")] if root.exists() else []


def test_a_killed_import_leaves_no_temp_file_once_the_store_is_opened(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    source = tmp_path / "big.gguf"
    shutil.copyfile(tiny_model_path, source)
    os.truncate(source, source.stat().st_size + PADDING_BYTES)
    root = tmp_path / "models"
    command = [
        sys.executable,
        "-m",
        "edge_runtime.cli",
        "models",
        "import",
        str(source),
        "--models-dir",
        str(root),
    ]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not any(temp.stat().st_size > 0 for temp in _temps(root)):
            assert child.poll() is None, "the import ended before it was killed"
            assert time.monotonic() < deadline, "the import never started copying"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert len(_temps(root)) == 1

    store = ModelStore(root)

    assert _temps(root) == []
    assert store.list() == []
