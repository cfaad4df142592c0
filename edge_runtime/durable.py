"""Replacing a small file so that a reader sees the old bytes or the new ones, and a crash or a full disk
leaves the old file and no temp file: write a uniquely named temp beside it, fsync, rename, fsync the
folder."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def temp_path_beside(path: Path) -> Path:
    """A hidden name in `path`'s folder no other writer (process or thread) will pick."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data`; on return the bytes are on disk. An OSError (ENOSPC, EDQUOT, EIO...)
    leaves `path` as it was and removes the temp file."""
    temp = temp_path_beside(path)
    try:
        with open(temp, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        fsync_dir(path.parent)
    finally:
        temp.unlink(missing_ok=True)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
