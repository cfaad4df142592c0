"""The registrations file's formats: versioned, the bare list of before, and what is set aside or dropped."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from edge_runtime.errors import ModelNotFound
from edge_runtime.server.catalog import REGISTRATIONS_FILE, ModelCatalog
from edge_runtime.store import ModelStore

ALIAS = {"model_id": "org/alias", "stored_id": "tiny", "model_type": "llm", "metadata": {}}


@pytest.fixture()
def store(tmp_path: Path, tiny_model_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "models")
    store.import_model(tiny_model_path, model_id="tiny", link=True)
    return store


def _register(catalog: ModelCatalog, model_id: str) -> None:
    catalog.register(model_id, provider_model_id="tiny", model_type=None, metadata=None, provider_id=None)


def test_the_bare_list_of_before_is_read_and_rewritten_with_a_version(store: ModelStore) -> None:
    path = store.root / REGISTRATIONS_FILE
    path.write_text(json.dumps([ALIAS]))
    catalog = ModelCatalog(store)
    assert catalog.resolve("org/alias").entry.id == "tiny"
    _register(catalog, "second")
    document = json.loads(path.read_text())
    assert document["version"] == 1
    assert [r["model_id"] for r in document["registrations"]] == ["org/alias", "second"]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"registrations": [ALIAS]}, "no version"),
        ({"version": 1, "registrations": {"a": 1}}, "not a list"),
        ({"version": 1, "registrations": [{**ALIAS, "model_type": "vision"}]}, "'model_type'"),
        ({"version": 1, "registrations": [{**ALIAS, "stored_id": 7}]}, "'stored_id'"),
        ([ALIAS, "text"], "not an object"),
        ("just a string", "no version"),
    ],
)
def test_a_file_of_the_wrong_shape_is_set_aside_with_one_log_line(
    store: ModelStore, caplog: pytest.LogCaptureFixture, document: object, problem: str
) -> None:
    path = store.root / REGISTRATIONS_FILE
    path.write_text(json.dumps(document))
    with caplog.at_level(logging.WARNING):
        catalog = ModelCatalog(store)
    assert [m.identifier for m in catalog.list()] == ["tiny"]
    (record,) = [r for r in caplog.records if REGISTRATIONS_FILE in r.getMessage()]
    assert problem in record.getMessage()
    assert not path.exists() and len(list(store.root.glob(f"{REGISTRATIONS_FILE}.corrupt-*"))) == 1


def test_invalid_ids_already_on_disk_are_dropped_and_then_removed(
    store: ModelStore, caplog: pytest.LogCaptureFixture
) -> None:
    path = store.root / REGISTRATIONS_FILE
    bad = [{**ALIAS, "model_id": name} for name in ("../../etc/passwd", "line\nbreak", "/abs")]
    path.write_text(json.dumps([ALIAS, *bad]))
    with caplog.at_level(logging.WARNING):
        catalog = ModelCatalog(store)
    (record,) = [r for r in caplog.records if "invalid ids" in r.getMessage()]
    assert "\n" not in record.getMessage()
    assert {m.identifier for m in catalog.list()} == {"tiny", "org/alias"}
    for _ in range(2):  # a miss re-reads the file, but says nothing new
        with pytest.raises(ModelNotFound):
            catalog.resolve("line\nbreak")
    assert len([r for r in caplog.records if "invalid ids" in r.getMessage()]) == 1
    catalog.unregister("org/alias")
    assert json.loads(path.read_text()) == {"version": 1, "registrations": []}
