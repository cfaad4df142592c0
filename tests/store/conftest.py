"""Fixtures for store tests."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from pathlib import Path

import pytest


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[bytes], Path]:
    """Write bytes (usually from gguf_builder.gguf_bytes) to a fresh .gguf file and return its path."""
    numbers = count()

    def write(data: bytes) -> Path:
        path = tmp_path / f"model-{next(numbers)}.gguf"
        path.write_bytes(data)
        return path

    return write
