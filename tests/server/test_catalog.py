"""The server's model catalog over a real store: registered ids, embedding views, persistence, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_runtime.errors import BadRequest, ModelNotFound
from edge_runtime.server.catalog import ModelCatalog
from edge_runtime.server.errors import Forbidden
from edge_runtime.store import ModelStore


@pytest.fixture()
def store(tmp_path: Path, tiny_model_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "models")
    store.import_model(tiny_model_path, model_id="tiny", link=True)
    return store


def _register(catalog: ModelCatalog, model_id: str, **kwargs: object) -> object:
    options = {"provider_model_id": "tiny", "model_type": None, "metadata": None, "provider_id": None}
    options.update(kwargs)
    return catalog.register(model_id, **options)  # type: ignore[arg-type]


def test_registered_ids_resolve_to_the_stored_file_and_persist(store: ModelStore) -> None:
    catalog = ModelCatalog(store)
    _register(catalog, "org/alias", metadata={"team": "a"})
    _register(catalog, "tiny-embed", model_type="embedding", metadata={"embedding_dimension": 64})
    reopened = ModelCatalog(store)
    alias, view = reopened.resolve("org/alias"), reopened.resolve("tiny-embed")
    assert (alias.entry.id, alias.model_type, alias.metadata["team"]) == ("tiny", "llm", "a")
    assert (view.entry.id, view.model_type) == ("tiny", "embedding")
    assert {m.identifier for m in reopened.list()} == {"tiny", "org/alias", "tiny-embed"}


def test_refusals(store: ModelStore) -> None:
    catalog = ModelCatalog(store)
    with pytest.raises(ModelNotFound):
        _register(catalog, "x", provider_model_id="missing")
    with pytest.raises(BadRequest, match="embedding_dimension"):
        _register(catalog, "x", model_type="embedding", metadata={"embedding_dimension": 3})
    with pytest.raises(BadRequest, match="provider"):
        _register(catalog, "x", provider_id="someone-else")
    _register(catalog, "x")
    with pytest.raises(BadRequest, match="already registered"):
        _register(catalog, "x", model_type="embedding")
    with pytest.raises(Forbidden):
        catalog.unregister("tiny")
    catalog.unregister("x")
    with pytest.raises(ModelNotFound):
        catalog.resolve("x")
    assert store.get("tiny").id == "tiny"


def test_registering_a_stored_id_as_itself_is_idempotent(store: ModelStore) -> None:
    catalog = ModelCatalog(store)
    assert (
        catalog.register(
            "tiny", provider_model_id=None, model_type="llm", metadata=None, provider_id=None
        ).identifier
        == "tiny"
    )
    assert [m.identifier for m in catalog.list()] == ["tiny"]
