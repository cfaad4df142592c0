"""End to end on the real Gemma 3 270M: it knows a capital, a choice constraint picks it, seeds hold."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import RunGeneration, collect

from edge_runtime.engine.choice_constraint import ChoiceConstraint
from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.types import GenerationRequest, SamplingParams

pytestmark = pytest.mark.gemma


@pytest.fixture(scope="module")
def gemma(gemma_model_path: Path) -> Iterator[LoadedModel]:
    # One thread: with other tests busy on both cores, two llama.cpp threads wait for each other at every op.
    model = LoadedModel(gemma_model_path, "gemma", EngineConfig(n_slots=3, n_ctx_per_slot=512, n_threads=1))
    yield model
    model.close()


def test_gemma_generates_chooses_and_keeps_seeds(gemma: LoadedModel, run: RunGeneration) -> None:
    prompt = gemma.tokenize("Q: What is the capital of France?\nA:")
    assert gemma.architecture == "gemma3" and gemma.tokenizer.eog_ids
    greedy = run(gemma, GenerationRequest(prompt, max_tokens=8, stop=["\n"]))
    assert greedy.done.choices[0].text == " Paris"
    assert greedy.done.choices[0].finish_reason == "stop_string"
    assert greedy.streamed_text() == " Paris"

    cities = [" London", " Paris", " Berlin", " Paris, France"]
    chosen = run(
        gemma,
        GenerationRequest(
            prompt, max_tokens=10, logprobs=2, constraint_factory=lambda: ChoiceConstraint(cities, gemma)
        ),
    )
    assert chosen.done.choices[0].text in (" Paris", " Paris, France")

    request = GenerationRequest(prompt, SamplingParams(temperature=0.9, top_p=0.95, seed=5), max_tokens=12)
    alone = run(gemma, request).tokens()

    async def together() -> list[list[int]]:
        others = [
            GenerationRequest(
                gemma.tokenize("Once upon a time"), SamplingParams(temperature=1.0, seed=1), max_tokens=16
            ),
            GenerationRequest(
                gemma.tokenize("def main():"), SamplingParams(temperature=0.7, seed=2), max_tokens=9
            ),
        ]
        results = await asyncio.gather(*(collect(gemma, r) for r in [request, *others]))
        return [result.tokens() for result in results]

    assert asyncio.run(together())[0] == alone
