"""The models the server answers for: every stored model, plus ids registered over the API that point at a
stored file (an alias, or an embedding view of an llm file). Registrations persist in one JSON file."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge_runtime.errors import BadRequest, ModelNotFound
from edge_runtime.server.errors import Forbidden
from edge_runtime.store import ModelEntry, ModelStore

ModelType = Literal["llm", "embedding"]
PROVIDER_ID = "edge-runtime"
REGISTRATIONS_FILE = "api-registrations.json"


@dataclass(frozen=True)
class Registration:
    model_id: str
    stored_id: str
    model_type: ModelType
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CatalogModel:
    """A servable id: which stored file backs it, as what type, and the metadata to report."""

    identifier: str
    entry: ModelEntry
    model_type: ModelType
    metadata: dict[str, Any]


def entry_metadata(entry: ModelEntry) -> dict[str, Any]:
    """What the GGUF header says about a stored model."""
    return {
        "architecture": entry.architecture,
        "context_length": entry.context_length,
        "quantization": entry.quantization,
        "parameter_count": entry.parameter_count,
        "size": entry.size,
        "sha256": entry.sha256,
        "embedding_dimension": entry.embedding_length,
        "aliases": list(entry.aliases),
    }


class ModelCatalog:
    def __init__(self, store: ModelStore, registrations_path: Path | None = None) -> None:
        self.store = store
        self._path = registrations_path or store.root / REGISTRATIONS_FILE
        self._lock = threading.Lock()
        self._registrations = self._load()

    def list(self) -> list[CatalogModel]:
        models = [self._stored(entry) for entry in self.store.list()]
        for registration in self._registrations.values():
            try:
                models.append(self._registered(registration))
            except ModelNotFound:
                continue
        return models

    def resolve(self, name: str) -> CatalogModel:
        registration = self._registrations.get(name)
        if registration is not None:
            return self._registered(registration)
        return self._stored(self.store.get(name))

    def register(
        self,
        model_id: str,
        *,
        provider_model_id: str | None,
        model_type: ModelType | None,
        metadata: dict[str, Any] | None,
        provider_id: str | None,
    ) -> CatalogModel:
        if provider_id not in (None, PROVIDER_ID):
            raise BadRequest(
                f"provider_id: unknown provider '{provider_id}' (this server is '{PROVIDER_ID}')"
            )
        target = self.store.get(provider_model_id or model_id)
        kind: ModelType = model_type or target.model_type
        if kind == "llm" and target.model_type == "embedding":
            raise BadRequest(f"model_type: '{target.id}' is an embedding model and cannot serve as an llm")
        expected_dimension = (metadata or {}).get("embedding_dimension")
        if expected_dimension is not None and expected_dimension != target.embedding_length:
            raise BadRequest(
                f"metadata.embedding_dimension: '{target.id}' has embedding dimension {target.embedding_length}, "
                f"not {expected_dimension}"
            )
        if model_id == target.id or model_id in target.aliases:
            if kind == target.model_type:
                return self._stored(target)
            raise BadRequest(
                f"model_id: '{model_id}' is a stored {target.model_type} model; register the "
                f"{kind} view under another id"
            )
        with self._lock:
            existing = self._registrations.get(model_id)
            registration = Registration(model_id, target.id, kind, dict(metadata or {}))
            if existing is not None and existing != registration:
                raise BadRequest(
                    f"model_id: '{model_id}' is already registered differently; unregister it first"
                )
            self._registrations[model_id] = registration
            self._save()
        return self._registered(registration)

    def unregister(self, name: str) -> None:
        with self._lock:
            if name in self._registrations:
                del self._registrations[name]
                self._save()
                return
        entry = self.store.get(name)
        raise Forbidden(
            f"'{name}' is a stored model file; remove it with `edge-runtime models rm {entry.id}`"
        )

    def _stored(self, entry: ModelEntry) -> CatalogModel:
        return CatalogModel(entry.id, entry, entry.model_type, entry_metadata(entry))

    def _registered(self, registration: Registration) -> CatalogModel:
        entry = self.store.get(registration.stored_id)
        metadata = {**entry_metadata(entry), **registration.metadata}
        return CatalogModel(registration.model_id, entry, registration.model_type, metadata)

    def _load(self) -> dict[str, Registration]:
        try:
            raw = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        return {item["model_id"]: Registration(**item) for item in raw}

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temp = self._path.with_suffix(".tmp")
        temp.write_text(json.dumps([asdict(r) for r in self._registrations.values()], indent=2))
        os.replace(temp, self._path)
