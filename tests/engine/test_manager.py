"""ModelManager over a real store: loading on first use, aliases, model types and the memory budget."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest
from engine_support import TINY_CONFIG

from edge_runtime.engine.loaded_model import LoadedModel, required_bytes
from edge_runtime.engine.manager import ModelManager
from edge_runtime.engine.types import GenerationRequest
from edge_runtime.errors import InsufficientMemory, ModelNotFound, WrongModelType
from edge_runtime.store import ModelStore


@pytest.fixture
def store(tmp_path: Path, tiny_model_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "models")
    store.import_model(tiny_model_path, model_id="tiny", link=True)
    store.add_alias("tiny", "small")
    store.import_model(tiny_model_path, model_id="tiny-embed", link=True, model_type="embedding")
    return store


def test_loads_on_first_use_once_and_resolves_aliases(store: ModelStore) -> None:
    manager = ModelManager(store, TINY_CONFIG)
    try:
        assert manager.loaded() == []

        async def load_twice() -> list[LoadedModel]:
            return list(await asyncio.gather(manager.get("small"), manager.get("tiny")))

        first, second = asyncio.run(load_twice())
        assert first is second and first.model_id == "tiny"
        assert manager.loaded() == [first]

        async def generate() -> int:
            events = [e async for e in first.generate(GenerationRequest(first.tokenize("The"), max_tokens=3))]
            return events[-1].completion_tokens  # type: ignore[union-attr]

        assert asyncio.run(generate()) == 3
    finally:
        manager.close_all()
    assert manager.loaded() == []


def test_unknown_model(store: ModelStore) -> None:
    manager = ModelManager(store, TINY_CONFIG)
    with pytest.raises(ModelNotFound):
        asyncio.run(manager.get("nope"))


def test_embedding_model_asked_to_generate(store: ModelStore) -> None:
    manager = ModelManager(store, TINY_CONFIG)
    try:
        with pytest.raises(WrongModelType):
            asyncio.run(manager.get("tiny-embed"))
        model = asyncio.run(manager.get("tiny-embed", model_type="embedding"))
        assert model.model_type == "embedding" and model.scheduler is None
        assert len(asyncio.run(model.embed(["hello"]))[0]) == model.embedding_dimension
    finally:
        manager.close_all()


def test_budget_too_small_raises_insufficient_memory(store: ModelStore) -> None:
    manager = ModelManager(store, dataclasses.replace(TINY_CONFIG, memory_budget_bytes=1 << 20))
    with pytest.raises(InsufficientMemory, match="budget"):
        asyncio.run(manager.get("tiny"))
    assert manager.loaded() == []


def test_least_recently_used_is_unloaded_to_fit_the_budget(store: ModelStore) -> None:
    info = store.info("tiny")
    need_llm = required_bytes(info, TINY_CONFIG, "llm")
    need_embedding = required_bytes(info, TINY_CONFIG, "embedding")
    config = dataclasses.replace(TINY_CONFIG, memory_budget_bytes=need_llm + need_embedding - 1)
    manager = ModelManager(store, config)
    try:
        llm = asyncio.run(manager.get("tiny"))
        embedding = asyncio.run(manager.get("tiny-embed", model_type="embedding"))
        assert manager.loaded() == [embedding]
        assert llm.scheduler is None
        reloaded = asyncio.run(manager.get("tiny"))
        assert reloaded is not llm and manager.loaded() == [reloaded]
    finally:
        manager.close_all()


def test_loading_refuses_more_than_the_free_memory(tiny_model_path: Path) -> None:
    with pytest.raises(InsufficientMemory, match=r"needs about \d+ MiB but only 1 MiB is free"):
        LoadedModel(tiny_model_path, "tiny", TINY_CONFIG, free_bytes=1 << 20)


def test_idle_models_are_unloaded_and_load_again_on_next_use(store: ModelStore) -> None:
    manager = ModelManager(store, dataclasses.replace(TINY_CONFIG, idle_unload_s=60.0))
    try:
        first = asyncio.run(manager.get("tiny"))
        embedder = asyncio.run(manager.get("tiny-embed", model_type="embedding"))
        assert manager.unload_idle() == []
        asyncio.run(manager.get("tiny"))
        later = time.monotonic() + 61.0
        assert sorted(manager.unload_idle(now=later)) == ["tiny", "tiny-embed"]
        assert manager.loaded() == []
        assert first.scheduler is None and embedder.embedder is None
        again = asyncio.run(manager.get("tiny"))
        assert again is not first and manager.loaded() == [again]
    finally:
        manager.close_all()


def test_idle_unloading_spares_a_busy_model_and_is_off_by_default(store: ModelStore) -> None:
    manager = ModelManager(store, dataclasses.replace(TINY_CONFIG, idle_unload_s=1.0))
    default = ModelManager(store, TINY_CONFIG)
    try:
        model = asyncio.run(manager.get("tiny"))
        idle_model = asyncio.run(default.get("tiny"))
        assert default.unload_idle(now=time.monotonic() + 1e9) == [] and default.loaded() == [idle_model]

        async def unload_while_generating() -> list[str]:
            request = GenerationRequest(model.tokenize("hello"), max_tokens=50)
            events = model.generate(request)
            await anext(events)
            try:
                return manager.unload_idle(now=time.monotonic() + 10.0)
            finally:
                await events.aclose()

        assert asyncio.run(unload_while_generating()) == []
        assert manager.loaded() == [model]
    finally:
        manager.close_all()
        default.close_all()


def test_a_model_held_by_a_request_is_not_unloaded(store: ModelStore) -> None:
    """Between loading and handing work to the scheduler a request holds the model (in_use)."""
    manager = ModelManager(store, dataclasses.replace(TINY_CONFIG, idle_unload_s=1.0))
    try:
        model = asyncio.run(manager.get("tiny"))
        with model.in_use():
            assert manager.unload_idle(now=time.monotonic() + 10.0) == []
        assert manager.unload_idle(now=time.monotonic() + 10.0) == ["tiny"]
    finally:
        manager.close_all()
