"""A registration that cannot be written is a 507 that changes nothing: not in memory, not on disk, no temp
file.

With root, the store is a small tmpfs filled to the last byte (ENOSPC from the kernel); without it, a
file-size rlimit on the server process makes the kernel refuse the write (EFBIG) instead.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import TINY_ID
from serve_process import running_server

from edge_runtime.store import ModelStore

TMPFS_SIZE = "4m"
FILE_SIZE_LIMIT_BYTES = 16
"""Smaller than any registrations file or manifest, so the first write of either fails."""


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; test_failed_write_under_a_file_size_limit covers this case")
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
        check=False,
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        reason = mounted.stderr.strip()
        pytest.skip(f"cannot mount a tmpfs here ({reason}); the file-size-limit test covers this case")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _fill(directory: Path) -> Path:
    """Write one file until the file system has not a byte left."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        for chunk in (b"\0" * 65536, b"\0"):
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as error:
                    assert error.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler


def _with_file_size_limit() -> str:
    """Python code that sets the file-size rlimit and execs its arguments (CPython ignores SIGXFSZ, so a write
    past the limit fails with EFBIG instead of killing the process)."""
    return (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT_BYTES}, {FILE_SIZE_LIMIT_BYTES})); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )


def _register(http: httpx.Client, model_id: str) -> httpx.Response:
    return http.post("/v1/models", json={"model_id": model_id, "provider_model_id": TINY_ID})


def _leftovers(store: Path) -> list[str]:
    return sorted(path.name for path in store.iterdir() if path.name.endswith(".tmp"))


def test_disk_full_is_a_507_that_changes_nothing(small_tmpfs: Path, tiny_model_path: Path) -> None:
    ModelStore(small_tmpfs).import_model(tiny_model_path, model_id=TINY_ID)
    with running_server(small_tmpfs) as server, server.client() as http:
        assert _register(http, "kept").status_code == 200
        filler = _fill(small_tmpfs)
        refused = _register(http, "refused")
        assert refused.status_code == 507, refused.text
        assert "No space left on device" in refused.json()["detail"]
        assert http.get("/v1/models/refused").status_code == 404
        assert http.delete("/v1/models/kept").status_code == 507
        assert http.get("/v1/models/kept").status_code == 200
        assert _leftovers(small_tmpfs) == []
    filler.unlink()
    with running_server(small_tmpfs) as server, server.client() as http:
        assert http.get("/v1/models/kept").status_code == 200
        assert http.get("/v1/models/refused").status_code == 404
        assert _register(http, "refused").status_code == 200


def test_failed_write_under_a_file_size_limit(tmp_path: Path, tiny_model_path: Path) -> None:
    store = tmp_path / "models"
    ModelStore(store).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    limited = (sys.executable, "-c", _with_file_size_limit())
    with running_server(store, prefix=limited) as server, server.client() as http:
        refused = _register(http, "refused")
        assert refused.status_code == 507, refused.text
        assert "File too large" in refused.json()["detail"]
        assert http.get("/v1/models/refused").status_code == 404
        assert _leftovers(store) == []
    assert not (store / "api-registrations.json").exists()
    with running_server(store) as server, server.client() as http:
        assert http.get("/v1/models/refused").status_code == 404


def test_a_failed_manifest_write_leaves_the_store_as_it_was(tmp_path: Path, tiny_model_path: Path) -> None:
    store = tmp_path / "models"
    ModelStore(store).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    manifest = (store / "manifest.json").read_bytes()
    removing = subprocess.run(
        [sys.executable, "-c", _with_file_size_limit(), sys.executable, "-m", "edge_runtime.cli",
         "models", "rm", TINY_ID, "--models-dir", str(store)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert removing.returncode == 2 and "File too large" in removing.stderr, removing.stderr
    assert (store / "manifest.json").read_bytes() == manifest
    assert _leftovers(store) == [] and (store / f"{TINY_ID}.gguf").exists()
