"""Loads store models on first use, keeps several loaded, and unloads the least recently used under a budget."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import anyio

from edge_runtime.engine.llama_handles import LlamaError
from edge_runtime.engine.loaded_model import (
    EngineConfig,
    LoadedModel,
    ModelType,
    available_memory_bytes,
    required_bytes,
)
from edge_runtime.errors import InsufficientMemory, ModelUnavailable, WrongModelType
from edge_runtime.store import (
    ModelEntry,
    ModelFileError,
    ModelInfo,
    ModelStore,
    model_info_from_header,
    read_gguf_header,
)

__all__ = ["EngineConfig", "ModelManager"]

log = logging.getLogger(__name__)


class ModelManager:
    """One LoadedModel per (store id, model type): an llm file may also serve embeddings through a second,
    embeddings-only context."""

    def __init__(self, store: ModelStore, config: EngineConfig | None = None) -> None:
        self.store = store
        self.config = config or EngineConfig()
        self._loaded: OrderedDict[tuple[str, ModelType], LoadedModel] = OrderedDict()
        self._locks: dict[tuple[str, ModelType], asyncio.Lock] = {}
        self._last_used: dict[tuple[str, ModelType], float] = {}

    def loaded(self) -> list[LoadedModel]:
        return list(self._loaded.values())

    async def get(self, model_id: str, *, model_type: ModelType = "llm") -> LoadedModel:
        return await self.get_entry(self.store.get(model_id), model_type=model_type)

    async def get_entry(self, entry: ModelEntry, *, model_type: ModelType = "llm") -> LoadedModel:
        """As get, for a caller that has already resolved the store entry (no second manifest read)."""
        if entry.model_type == "embedding" and model_type == "llm":
            raise WrongModelType(f"model '{entry.id}' is an embedding model; it does not generate text")
        key = (entry.id, model_type)
        self._last_used[key] = time.monotonic()
        found = self._loaded.get(key)
        if found is not None:
            self._loaded.move_to_end(key)
            return found
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self._loaded.get(key)
            if found is not None:
                return found
            info = await anyio.to_thread.run_sync(self._checked_info, entry)
            self._make_room(required_bytes(info, self.config, model_type), keep=key)
            model = await anyio.to_thread.run_sync(self._load, entry, model_type)
            self._loaded[key] = model
            log.info("loaded '%s' as %s (about %d MiB)", entry.id, model_type, model.memory_bytes >> 20)
            return model

    def _checked_info(self, entry: ModelEntry) -> ModelInfo:
        """The header facts of the entry's file, once the file is known to be the one imported."""
        path = self.store.checked_path(entry)
        try:
            return model_info_from_header(read_gguf_header(path))
        except ModelFileError as error:
            log.error("model '%s': %s", entry.id, error)
            raise ModelUnavailable(
                entry.id, f"its file in the model store is unreadable ({error.reason}); import it again"
            ) from error

    def _load(self, entry: ModelEntry, model_type: ModelType) -> LoadedModel:
        """Load the checked file; a failure names the model (the path goes to the log, not to the client)."""
        path = self.store.checked_path(entry)
        try:
            return LoadedModel(
                path,
                entry.id,
                self.config,
                model_type=model_type,
                chat_template_override=entry.chat_template_override,
            )
        except (LlamaError, ModelFileError) as error:
            log.error("model '%s' did not load: %s", entry.id, error)
            raise ModelUnavailable(entry.id, "llama.cpp could not load it (the server log says why)") from error

    def _make_room(self, need: int, *, keep: tuple[str, ModelType]) -> None:
        """Unload idle models, least recently used first, until `need` fits the budget (or free memory)."""
        budget = self.config.memory_budget_bytes
        for key in list(self._loaded):
            if key == keep:
                continue
            in_use = sum(m.memory_bytes for m in self._loaded.values())
            fits = in_use + need <= budget if budget is not None else need <= available_memory_bytes()
            if fits:
                return
            model = self._loaded[key]
            if model.busy:
                continue
            log.info("unloading '%s' to make room", key[0])
            del self._loaded[key]
            model.close()
        in_use = sum(m.memory_bytes for m in self._loaded.values())
        if budget is not None and in_use + need > budget:
            raise InsufficientMemory(
                f"model '{keep[0]}' needs about {need >> 20} MiB by its estimate (weights, KV cache, compute) "
                f"and the memory budget of {budget >> 20} MiB has {max(budget - in_use, 0) >> 20} MiB left for "
                "it; it was not loaded (a smaller --ctx or fewer --slots lower the estimate)"
            )

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Unload the models nobody asked for within `config.idle_unload_s`; returns their ids."""
        timeout = self.config.idle_unload_s
        if timeout is None:
            return []
        now = time.monotonic() if now is None else now
        unloaded = []
        for key, model in list(self._loaded.items()):
            if now - self._last_used.get(key, now) >= timeout and not model.busy:
                log.info("unloading '%s' (%s): idle for %.0f s", key[0], key[1], now - self._last_used[key])
                del self._loaded[key]
                model.close()
                unloaded.append(key[0])
        return unloaded

    def unload(self, model_id: str) -> None:
        for key in [k for k in self._loaded if k[0] == model_id]:
            self._loaded.pop(key).close()

    def close_all(self) -> None:
        while self._loaded:
            _, model = self._loaded.popitem(last=False)
            model.close()
