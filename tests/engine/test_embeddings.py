"""Embeddings from the tiny model: normalized vectors of the model's width, batches, truncation, dimensions."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from engine_support import TINY_CONFIG

from edge_runtime.engine.loaded_model import LoadedModel
from edge_runtime.errors import BadRequest, ContextLengthExceeded, WrongModelType

EMBEDDING_CTX = 32
LONG = "the fox " * 40


@pytest.fixture(scope="module")
def embedder(tiny_model_path: Path) -> Iterator[LoadedModel]:
    config = dataclasses.replace(TINY_CONFIG, embedding_ctx=EMBEDDING_CTX, embedding_seqs=4)
    model = LoadedModel(tiny_model_path, "tiny-embed", config, model_type="embedding")
    yield model
    model.close()


def embed(model: LoadedModel, texts: list[str], **options: object) -> np.ndarray:
    return np.array(asyncio.run(model.embed(texts, **options)))  # type: ignore[arg-type]


def test_unit_vectors_of_the_model_width(embedder: LoadedModel) -> None:
    vectors = embed(embedder, ["hello world", "The quick brown fox", "a"])
    assert vectors.shape == (3, embedder.embedding_dimension) and embedder.embedding_dimension == 64
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0, 1.0])
    assert not np.allclose(vectors[0], vectors[1])


def test_a_batch_gives_what_each_input_gives_alone(embedder: LoadedModel) -> None:
    texts = ["hello world", "The quick brown fox", "the lazy dog", "a report", "the summary of the day"]
    together = embed(embedder, texts)
    alone = np.array([embed(embedder, [text])[0] for text in texts])
    assert np.allclose(together, alone, atol=1e-4)


def test_normalize_off_keeps_the_raw_length(embedder: LoadedModel) -> None:
    raw = embed(embedder, ["hello world"], normalize=False)[0]
    unit = embed(embedder, ["hello world"])[0]
    assert np.linalg.norm(raw) != pytest.approx(1.0)
    assert np.allclose(raw / np.linalg.norm(raw), unit, atol=1e-6)


def test_truncation(embedder: LoadedModel) -> None:
    assert len(embedder.tokenize(LONG)) > EMBEDDING_CTX
    with pytest.raises(ContextLengthExceeded):
        embed(embedder, [LONG])
    ends = embed(embedder, [LONG + "Paris", LONG + "Berlin"], truncation="end")
    assert np.allclose(ends[0], ends[1], atol=1e-6)
    starts = embed(embedder, ["Paris " + LONG, "Berlin " + LONG], truncation="start")
    assert np.allclose(starts[0], starts[1], atol=1e-6)
    assert not np.allclose(ends[0], starts[0])
    assert np.linalg.norm(np.vstack([ends, starts]), axis=1) == pytest.approx([1.0] * 4)


def test_output_dimension_truncates_and_renormalizes(embedder: LoadedModel) -> None:
    raw = embed(embedder, ["hello world"], normalize=False)[0]
    short = embed(embedder, ["hello world"], output_dimension=16)[0]
    assert short.shape == (16,)
    assert np.allclose(short, raw[:16] / np.linalg.norm(raw[:16]), atol=1e-6)
    with pytest.raises(BadRequest):
        embed(embedder, ["hello world"], output_dimension=65)
    with pytest.raises(BadRequest):
        embed(embedder, ["hello world"], output_dimension=0)


def test_bad_inputs(embedder: LoadedModel, tiny_llm: LoadedModel) -> None:
    with pytest.raises(BadRequest):
        embed(embedder, ["x"], truncation="middle")
    with pytest.raises(WrongModelType):
        embed(tiny_llm, ["x"])
    with pytest.raises(WrongModelType):
        asyncio.run(anext(embedder.generate(None)))  # type: ignore[arg-type]
