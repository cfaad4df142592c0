"""Prefix reuse on Gemma 3, whose sliding-window layers keep only their window of the KV cache (swa_full off):
a new prompt reuses a slot's cache where the window before the cut is still held, and reads its prompt afresh
where the window has moved on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from engine_support import RunGeneration, prose

from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel, required_bytes
from edge_runtime.engine.types import GenerationRequest
from edge_runtime.store.gguf_reader import read_gguf_header
from edge_runtime.store.model_info import model_info_from_header

pytestmark = pytest.mark.gemma


@pytest.fixture(scope="module")
def gemma(gemma_model_path: Path) -> Iterator[LoadedModel]:
    # One slot, so every request lands on the cache the previous one left; one thread (the cores are shared).
    model = LoadedModel(gemma_model_path, "gemma", EngineConfig(n_slots=1, n_ctx_per_slot=2048, n_threads=1))
    yield model
    model.close()


def test_the_window_size_reaches_the_context(gemma: LoadedModel) -> None:
    assert gemma.scheduler is not None and gemma.scheduler.context.model.n_swa == 512
    assert gemma.info.sliding_window == 512


def test_reuse_hits_where_the_window_is_held_and_not_where_it_moved_on(
    gemma: LoadedModel, run: RunGeneration
) -> None:
    shared = prose(gemma, "Instructions:", 521, first=True)
    first_tail = prose(gemma, " Report one:", 300)
    second_tail = prose(gemma, " Report two:", 40)

    first = run(gemma, GenerationRequest([*shared, *first_tail], max_tokens=2))
    assert first.done.cached_prompt_tokens == 0
    # 822 positions went through a window cache of 768 cells: positions up to about 50 were overwritten,
    # and a cut after `shared` (521) needs everything from position 9 on.
    moved_on = run(gemma, GenerationRequest([*shared, *second_tail], max_tokens=2))
    assert moved_on.done.cached_prompt_tokens == 0
    assert moved_on.done.completion_tokens == 2
    # Now the slot holds shared + second_tail + 2 tokens (562 positions): all of it still cached.
    again = run(gemma, GenerationRequest([*shared, *second_tail, *first_tail[:8]], max_tokens=2))
    assert again.done.cached_prompt_tokens >= len(shared) + len(second_tail)
    assert again.tokens() != [] and again.done.completion_tokens == 2
    # A cut some 50 positions back (after `shared`, and " Report" the two tails share) finds the window before
    # it: nothing was overwritten yet.
    shorter = run(gemma, GenerationRequest([*shared, *first_tail[:4]], max_tokens=2))
    assert len(shared) <= shorter.done.cached_prompt_tokens < len(shared) + 4


def test_swa_full_keeps_reuse_at_a_cut_the_window_cache_refuses(
    gemma_model_path: Path, run: RunGeneration
) -> None:
    config = EngineConfig(n_slots=1, n_ctx_per_slot=2048, n_threads=1, swa_full=True)
    info = model_info_from_header(read_gguf_header(gemma_model_path))
    # At the defaults' 4,096 cells a slot, the full cache costs more than the window and its two checkpoints
    # (768 cells each); at 2,048 it no longer does (the estimate counts the checkpoints since they exist).
    at_4096 = replace(config, n_ctx_per_slot=4096)
    assert required_bytes(info, at_4096, "llm") > required_bytes(info, replace(at_4096, swa_full=False), "llm")
    model = LoadedModel(gemma_model_path, "gemma-swa-full", config)
    try:
        assert model.scheduler is not None and model.scheduler.context.params.swa_full
        shared = prose(model, "Instructions:", 521, first=True)
        first = run(model, GenerationRequest([*shared, *prose(model, " Report one:", 300)], max_tokens=2))
        assert first.done.cached_prompt_tokens == 0
        # The same cut the window-only cache refuses above (test_reuse_hits_where_...) is kept whole here.
        second = run(model, GenerationRequest([*shared, *prose(model, " Report two:", 40)], max_tokens=2))
        assert second.done.cached_prompt_tokens >= len(shared)
    finally:
        model.close()
