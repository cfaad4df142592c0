"""Engine fixtures: the tiny model loaded once per session, and a runner that drains a generation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from engine_support import SMALL_STEPS, TINY_CONFIG, RunGeneration, collect

from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.scheduler import BatchScheduler


@pytest.fixture
def run() -> RunGeneration:
    """Run one request to its end on a fresh event loop."""
    return lambda model, request: asyncio.run(collect(model, request))


@pytest.fixture(scope="session")
def tiny_llm(tiny_model_path: Path) -> Iterator[LoadedModel]:
    model = LoadedModel(tiny_model_path, "tiny", TINY_CONFIG)
    yield model
    model.close()


@pytest.fixture
def make_tiny_llm(tiny_model_path: Path) -> Iterator[Callable[[EngineConfig], LoadedModel]]:
    """A tiny model with its own configuration (closed after the test)."""
    models: list[LoadedModel] = []

    def make(config: EngineConfig) -> LoadedModel:
        models.append(LoadedModel(tiny_model_path, "tiny", config))
        return models[-1]

    yield make
    for model in models:
        model.close()


@pytest.fixture
def small_steps_llm(make_tiny_llm: Callable[[EngineConfig], LoadedModel]) -> LoadedModel:
    """A tiny model reading 32 prompt tokens a step (engine_support.SMALL_STEPS)."""
    return make_tiny_llm(SMALL_STEPS)


@pytest.fixture
def small_steps_scheduler(small_steps_llm: LoadedModel) -> BatchScheduler:
    assert small_steps_llm.scheduler is not None
    return small_steps_llm.scheduler
