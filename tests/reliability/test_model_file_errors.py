"""A model whose store file is missing or changed since import: the server's fault, a 503 naming the model
(never a server path), and every other model and route keeps working."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import serve, tiny_settings

from edge_runtime.store import ModelStore

GOOD, BROKEN = "tiny", "tiny-broken"


@pytest.fixture()
def store(tmp_path: Path, tiny_model_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "models")
    store.import_model(tiny_model_path, model_id=GOOD)
    store.import_model(tiny_model_path, model_id=BROKEN)
    return store


@pytest.fixture()
def http(store: ModelStore) -> Iterator[httpx.Client]:
    for server in serve(tiny_settings(store.root, preload=())):
        with server.client() as client:
            yield client


def _writable(path: Path) -> Path:
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return path


def _break_by_removing(path: Path) -> None:
    path.unlink()


def _break_by_truncating(path: Path) -> None:
    os.truncate(_writable(path), 4096)


def _break_by_rewriting(path: Path) -> None:
    """Same size, other bytes: only the mtime recorded at import tells."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    _writable(path).write_bytes(bytes(data))
    stamp = path.stat()
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize("damage", [_break_by_removing, _break_by_truncating, _break_by_rewriting])
def test_a_broken_store_file_is_a_503_naming_the_model(
    store: ModelStore, http: httpx.Client, damage: object
) -> None:
    path = store.path_of(store.get(BROKEN))
    damage(path)  # type: ignore[operator]

    native = http.post(
        "/v1/inference/completion",
        json={"model_id": BROKEN, "content": "hi", "sampling_params": {"max_tokens": 2}},
    )
    assert native.status_code == 503, native.text
    detail = native.json()["detail"]
    assert f"model '{BROKEN}'" in detail and "import" in detail
    assert str(store.root) not in detail and "/" not in detail

    openai = http.post(
        "/v1/chat/completions", json={"model": BROKEN, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert openai.status_code == 503, openai.text
    error = openai.json()["error"]
    assert error["code"] == "model_unavailable" and error["param"] == "model"
    assert f"model '{BROKEN}'" in error["message"] and "/" not in error["message"]

    good = http.post("/v1/completions", json={"model": GOOD, "prompt": "hi", "max_tokens": 2})
    assert good.status_code == 200, good.text
    assert http.get("/v1/health").status_code == 200
    assert {m["id"] for m in http.get("/v1/openai/v1/models").json()["data"]} >= {GOOD, BROKEN}


def test_a_model_gone_from_the_manifest_is_a_404(store: ModelStore, http: httpx.Client) -> None:
    store.remove(BROKEN)
    answer = http.post(
        "/v1/chat/completions", json={"model": BROKEN, "messages": [{"role": "user", "content": "x"}]}
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "model_not_found"


def test_an_unreadable_manifest_is_a_500_without_its_path(store: ModelStore, http: httpx.Client) -> None:
    store.manifest_path.write_text("{not json")
    answer = http.post("/v1/completions", json={"model": GOOD, "prompt": "hi", "max_tokens": 2})
    assert answer.status_code == 500
    assert str(store.root) not in answer.text
    assert http.get("/v1/health").status_code == 200
