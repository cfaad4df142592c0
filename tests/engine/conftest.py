"""Engine fixtures: the tiny model loaded once per session, and a runner that drains a generation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.types import (
    ChoiceFinished,
    GenerationDone,
    GenerationEvent,
    GenerationRequest,
    TextPiece,
)

TINY_CONFIG = EngineConfig(n_slots=4, n_ctx_per_slot=256, n_threads=1, n_batch=256, n_ubatch=64, queue_size=8)


@dataclass(frozen=True)
class Generation:
    """Every event of one request, with the usual questions about them answered."""

    events: list[GenerationEvent]

    @property
    def done(self) -> GenerationDone:
        last = self.events[-1]
        assert isinstance(last, GenerationDone)
        return last

    @property
    def pieces(self) -> list[TextPiece]:
        return [event for event in self.events if isinstance(event, TextPiece)]

    @property
    def finished(self) -> list[ChoiceFinished]:
        return [event for event in self.events if isinstance(event, ChoiceFinished)]

    def streamed_text(self, index: int = 0) -> str:
        return "".join(piece.text for piece in self.pieces if piece.index == index)

    def tokens(self, index: int = 0) -> list[int]:
        return self.done.choices[index].token_ids


async def collect(model: LoadedModel, request: GenerationRequest) -> Generation:
    return Generation([event async for event in model.generate(request)])


RunGeneration = Callable[[LoadedModel, GenerationRequest], Generation]


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
