"""ModelStore on real files: round trips, refusals, an import killed mid-copy, concurrent imports."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_runtime.errors import BadRequest, ModelNotFound, ModelUnavailable
from edge_runtime.store import (
    MODELS_DIR_ENV,
    DuplicateModel,
    GGUFFormatError,
    InvalidModelId,
    ModelFileError,
    ModelStore,
    StoreCorrupt,
    default_models_dir,
)
from edge_runtime.store.registry import TEMP_SUFFIX

REPO_ROOT = Path(__file__).resolve().parents[2]


def _visible_files(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.name != ".manifest.lock"}


def _manifest_ids(root: Path) -> list[str]:
    return [m["id"] for m in json.loads((root / "manifest.json").read_text())["models"]]


def test_import_list_get_alias_verify_remove_round_trip(tmp_path: Path, tiny_model_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    assert store.list() == []
    copy = tmp_path / "Tiny-Model.gguf"
    shutil.copyfile(tiny_model_path, copy)

    entry = store.import_model(copy)
    assert entry.id == "tiny-model"
    assert (entry.architecture, entry.quantization, entry.context_length) == ("llama", "F32", 512)
    assert (entry.vocab_size, entry.embedding_length, entry.parameter_count) == (466, 64, 133_696)
    assert entry.has_chat_template and entry.model_type == "llm"
    assert entry.size == tiny_model_path.stat().st_size
    assert store.path_of(entry).read_bytes() == tiny_model_path.read_bytes()
    assert store.list() == [entry]
    assert _manifest_ids(store.root) == ["tiny-model"]
    assert store.verify("tiny-model")

    aliased = store.add_alias("tiny-model", "t")
    assert aliased.aliases == ("t",)
    assert store.get("t") == aliased
    assert ModelStore(store.root).get("t") == aliased  # persisted, read by a fresh instance
    assert store.info("t").vocab_size == 466

    overridden = store.set_chat_template_override("t", "chatml")
    assert store.get("tiny-model").chat_template_override == "chatml" == overridden.chat_template_override
    assert store.set_chat_template_override("t", None).chat_template_override is None

    removed = store.remove("t")
    assert removed.id == "tiny-model"
    assert store.list() == []
    assert _visible_files(store.root) == {"manifest.json"}
    with pytest.raises(ModelNotFound):
        store.get("t")


def test_hard_link_import_shares_the_inode(tmp_path: Path, tiny_model_path: Path) -> None:
    source = tmp_path / "source.gguf"
    shutil.copyfile(tiny_model_path, source)
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelFileError, match=r"writable.*chmod a-w.*without --link"):
        store.import_model(source, model_id="linked", link=True)
    assert store.list() == []

    source.chmod(0o444)
    entry = store.import_model(source, model_id="linked", link=True)
    assert store.path_of(entry).stat().st_ino == source.stat().st_ino
    assert store.verify("linked")


def test_stored_files_are_read_only_and_checked_before_loading(tmp_path: Path, tiny_model_path: Path) -> None:
    store = ModelStore(tmp_path)
    entry = store.import_model(tiny_model_path, model_id="tiny")
    path = store.path_of(entry)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert entry.mtime_ns == path.stat().st_mtime_ns
    assert store.checked_path(entry) == path

    os.utime(path, ns=(path.stat().st_atime_ns, entry.mtime_ns + 1))
    with pytest.raises(ModelUnavailable, match="model 'tiny' is unavailable: .* modified since import"):
        store.checked_path(entry)
    # A manifest written before mtimes were recorded: only the size is checked.
    assert store.checked_path(dataclasses.replace(entry, mtime_ns=None)) == path
    path.unlink()
    with pytest.raises(ModelUnavailable, match="missing from the model store"):
        store.checked_path(entry)


def test_a_second_view_with_another_type(tmp_path: Path, tiny_model_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.import_model(tiny_model_path, model_id="tiny")
    view = store.import_model(tiny_model_path, model_id="tiny-embed", model_type="embedding")
    assert view.model_type == "embedding"
    assert [e.id for e in store.list()] == ["tiny", "tiny-embed"]
    with pytest.raises(BadRequest, match="model type"):
        store.import_model(tiny_model_path, model_id="x", model_type="reranker")  # type: ignore[arg-type]


def test_refusals_leave_the_store_unchanged(tmp_path: Path, tiny_model_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    store.import_model(tiny_model_path, model_id="tiny")
    store.add_alias("tiny", "small")
    before = (store.root / "manifest.json").read_bytes()

    for taken in ("tiny", "small"):
        with pytest.raises(DuplicateModel, match=taken):
            store.import_model(tiny_model_path, model_id=taken)
        with pytest.raises(DuplicateModel):
            store.add_alias("tiny", taken)
    for bad in ("", "Upper", "a/b", "../x", "-x", "x" * 200):
        with pytest.raises(InvalidModelId):
            store.import_model(tiny_model_path, model_id=bad)
    with pytest.raises(ModelNotFound):
        store.remove("nope")
    with pytest.raises(ModelNotFound):
        store.add_alias("nope", "other")

    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(tiny_model_path.read_bytes()[:5000])
    with pytest.raises(GGUFFormatError, match="truncated.gguf"):
        store.import_model(truncated)
    with pytest.raises(BadRequest, match="cannot read"):
        store.import_model(tmp_path / "missing.gguf")

    assert (store.root / "manifest.json").read_bytes() == before
    assert _visible_files(store.root) == {"manifest.json", "tiny.gguf"}


def test_verify_detects_a_changed_or_missing_file(tmp_path: Path, tiny_model_path: Path) -> None:
    store = ModelStore(tmp_path)
    entry = store.import_model(tiny_model_path, model_id="tiny")
    path = store.path_of(entry)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(data)
    assert not store.verify("tiny")
    path.unlink()
    assert not store.verify("tiny")


def test_unreadable_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreCorrupt, match="manifest.json"):
        ModelStore(tmp_path).list()
    (tmp_path / "manifest.json").write_text('{"version": 7, "models": []}')
    with pytest.raises(StoreCorrupt, match="version 7"):
        ModelStore(tmp_path).list()


def test_default_root_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path / "elsewhere"))
    assert default_models_dir() == tmp_path / "elsewhere"
    assert ModelStore().root == tmp_path / "elsewhere"
    monkeypatch.delenv(MODELS_DIR_ENV)
    assert ModelStore().root == default_models_dir() != Path("models")


IMPORT_IN_CHILD = """
import sys, time
from pathlib import Path
import edge_runtime.store.registry as registry
root, source, model_id, marker, start = sys.argv[1:6]
registry.COPY_CHUNK_BYTES = 64 * 1024
def stall_after_first_chunk(copied, total):
    if marker != "-":
        partial = Path(marker + ".part")  # published whole: the test reads it as soon as it exists
        partial.write_text(str(copied))
        partial.replace(marker)
        time.sleep(60)
while start != "-" and not Path(start).exists():
    time.sleep(0.01)
registry.ModelStore(root).import_model(source, model_id=model_id, progress=stall_after_first_chunk)
"""


def _start_import(
    root: Path, source: Path, model_id: str, *, marker: str = "-", start: str = "-"
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", IMPORT_IN_CHILD, str(root), str(source), model_id, marker, start],
        cwd=REPO_ROOT,
    )


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert process.poll() is None, "the importing process exited early"
        assert time.monotonic() < deadline, "the importing process never reached the copy"
        time.sleep(0.01)


def test_an_import_killed_mid_copy_leaves_the_store_consistent(tmp_path: Path, tiny_model_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    store.import_model(tiny_model_path, model_id="kept")
    marker = tmp_path / "copying"
    child = _start_import(store.root, tiny_model_path, "victim", marker=str(marker))
    try:
        _wait_for(marker, child)
        assert 0 < int(marker.read_text()) < tiny_model_path.stat().st_size
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    assert [e.id for e in store.list()] == ["kept"]
    assert not (store.root / "victim.gguf").exists()
    leftovers = [p for p in store.root.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    assert len(leftovers) == 1  # the half copy, named after the dead process

    entry = store.import_model(tiny_model_path, model_id="victim")  # the next writer sweeps it
    assert not any(p.name.endswith(TEMP_SUFFIX) for p in store.root.iterdir())
    assert store.verify(entry.id) and store.verify("kept")
    assert _visible_files(store.root) == {"manifest.json", "kept.gguf", "victim.gguf"}


def test_concurrent_imports_from_several_processes_all_register(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    root = tmp_path / "models"
    start = tmp_path / "start"
    ids = [f"model-{n}" for n in range(4)]
    children = [_start_import(root, tiny_model_path, model_id, start=str(start)) for model_id in ids]
    start.touch()
    for child in children:
        assert child.wait(timeout=120) == 0
    store = ModelStore(root)
    assert [e.id for e in store.list()] == ids
    assert all(store.verify(model_id) for model_id in ids)
    assert _visible_files(root) == {"manifest.json", *(f"{model_id}.gguf" for model_id in ids)}
