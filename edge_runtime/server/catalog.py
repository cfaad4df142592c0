"""The models the server answers for: every stored model, plus ids registered over the API that point at a
stored file (an alias, or an embedding view of an llm file). Registrations persist in one JSON file in the
store (see registrations.py), shared by every server on the store."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_runtime.errors import BadRequest, ModelNotFound
from edge_runtime.server.errors import Forbidden
from edge_runtime.server.registrations import (
    REGISTRATIONS_FILE,
    ModelType,
    Registration,
    Registrations,
    RegistrationsFile,
    Snapshot,
    check_registered_id,
)
from edge_runtime.store import ModelEntry, ModelStore

PROVIDER_ID = "edge-runtime"


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
    """Reads are lock-free (a snapshot of the file, re-read when its stamp changes or a lookup misses);
    changes hold the store's lock, merge with the file, and touch memory only once the file is durable."""

    def __init__(self, store: ModelStore, registrations_path: Path | None = None) -> None:
        self.store = store
        self._file = RegistrationsFile(registrations_path or store.root / REGISTRATIONS_FILE, store.locked)
        self._write_lock = threading.Lock()
        self._snapshot: Snapshot = self._file.read()

    def list(self) -> list[CatalogModel]:
        models = [self._stored(entry) for entry in self.store.list()]
        for registration in self._current().values():
            try:
                models.append(self._registered(registration))
            except ModelNotFound:
                continue
        return models

    def resolve(self, name: str) -> CatalogModel:
        registration = self._current().get(name)
        if registration is not None:
            return self._registered(registration)
        try:
            return self._stored(self.store.get(name))
        except ModelNotFound:
            registration = self._current(reread=True).get(name)
            if registration is None:
                raise
            return self._registered(registration)

    def register(
        self,
        model_id: str,
        *,
        provider_model_id: str | None,
        model_type: ModelType | None,
        metadata: dict[str, Any] | None,
        provider_id: str | None,
    ) -> CatalogModel:
        """Blocks on the store's lock and an fsync: call it from a worker thread."""
        check_registered_id(model_id)
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
        registration = Registration(model_id, target.id, kind, dict(metadata or {}))
        with self._write_lock, self.store.locked():
            on_disk, stamp = self._file.read_locked()
            existing = on_disk.get(model_id)
            if existing is not None and existing != registration:
                raise BadRequest(
                    f"model_id: '{model_id}' is already registered differently; unregister it first"
                )
            if existing is None:
                on_disk = {**on_disk, model_id: registration}
                stamp = self._file.write_locked(on_disk)
            self._snapshot = (on_disk, stamp)
        return self._registered(registration)

    def unregister(self, name: str) -> None:
        """Blocks on the store's lock and an fsync: call it from a worker thread."""
        with self._write_lock, self.store.locked():
            on_disk, stamp = self._file.read_locked()
            if name in on_disk:
                on_disk = {key: value for key, value in on_disk.items() if key != name}
                stamp = self._file.write_locked(on_disk)
                self._snapshot = (on_disk, stamp)
                return
            self._snapshot = (on_disk, stamp)
        entry = self.store.get(name)
        raise Forbidden(
            f"'{name}' is a stored model file; remove it with `edge-runtime models rm {entry.id}`"
        )

    def _current(self, *, reread: bool = False) -> Registrations:
        """The registrations, re-read when another process replaced the file (or when asked, on a miss)."""
        registrations, stamp = self._snapshot
        if reread or self._file.stamp() != stamp:
            self._snapshot = self._file.read()
            registrations = self._snapshot[0]
        return registrations

    def _stored(self, entry: ModelEntry) -> CatalogModel:
        return CatalogModel(entry.id, entry, entry.model_type, entry_metadata(entry))

    def _registered(self, registration: Registration) -> CatalogModel:
        entry = self.store.get(registration.stored_id)
        metadata = {**entry_metadata(entry), **registration.metadata}
        return CatalogModel(registration.model_id, entry, registration.model_type, metadata)
