"""Helpers the engine tests import by name (conftest.py holds only fixtures: several test folders have one)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.types import (
    ChoiceFinished,
    GenerationDone,
    GenerationEvent,
    GenerationRequest,
    TextPiece,
    TokenLogprob,
)

TINY_CONFIG = EngineConfig(n_slots=4, n_ctx_per_slot=256, n_threads=1, n_batch=256, n_ubatch=64, queue_size=8)

SMALL_STEPS = dataclasses.replace(TINY_CONFIG, n_batch=32, n_ubatch=32)
"""32 tokens a step: a 150- or 200-token prompt takes several, so a test sees the scheduler in the middle."""


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

    def first_top(self) -> dict[int, float]:
        """The top logprobs of the first token written (a request asking for `logprobs`)."""
        entry = self.pieces[0].logprobs[0]  # type: ignore[index]
        assert isinstance(entry, TokenLogprob)
        return {token: logprob for token, _, logprob in entry.top}


async def collect(model: LoadedModel, request: GenerationRequest) -> Generation:
    return Generation([event async for event in model.generate(request)])


RunGeneration = Callable[[LoadedModel, GenerationRequest], Generation]


SENTENCE = " The engineers measured the bridge twice, once in the cold morning and once in the afternoon heat."


def prose(model: LoadedModel, label: str, n_tokens: int, *, first: bool = False) -> list[int]:
    """`n_tokens` tokens of text starting with `label`; the `first` piece of a prompt starts with BOS."""
    text = label
    while len(model.tokenize(text, add_special=first)) < n_tokens:
        text += SENTENCE
    return model.tokenize(text, add_special=first)[:n_tokens]
