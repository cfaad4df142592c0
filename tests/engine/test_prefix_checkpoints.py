"""Prefix checkpoints on Gemma 3 (swa_full off): the extraction pattern, one instruction prefix and then different
documents, keeps its prefix reuse after the sliding window moved past the prefix, and answers as a fresh read does."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import RunGeneration, prose

from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.prefix_checkpoints import CHECKPOINTS_PER_SLOT, PrefixCheckpoint, SlotCheckpoints
from edge_runtime.engine.types import GenerationRequest
from edge_runtime.server.metrics import ServerMetrics
from edge_runtime.store.model_info import estimate_memory

pytestmark = pytest.mark.gemma


@pytest.fixture
def gemma(gemma_model_path: Path) -> Iterator[LoadedModel]:
    model = LoadedModel(gemma_model_path, "gemma", EngineConfig(n_slots=1, n_ctx_per_slot=2048, n_threads=1))
    yield model
    model.close()


def test_a_shared_prefix_resumes_from_its_checkpoint_once_the_window_moved_on(
    gemma: LoadedModel, run: RunGeneration
) -> None:
    scheduler = gemma.scheduler
    assert scheduler is not None
    shared = prose(gemma, "Instructions:", 600, first=True)
    documents = [prose(gemma, label, 300) for label in (" Report one:", " Memo two:", " Letter three:")]

    first = run(gemma, GenerationRequest([*shared, *documents[0]], max_tokens=2))
    assert first.done.cached_prompt_tokens == 0
    # 900 positions went through a window cache of 768 cells: a cut after `shared` is refused, so the prompt is
    # read from the start, in two parts, and the window is saved after the shared prefix.
    second = run(gemma, GenerationRequest([*shared, *documents[1]], max_tokens=2))
    assert second.done.cached_prompt_tokens == 0
    assert scheduler.checkpoint_restores == 0
    decoded = scheduler.prompt_tokens_decoded

    third_prompt = [*shared, *documents[2]]
    third = run(gemma, GenerationRequest(third_prompt, max_tokens=12))
    assert third.done.cached_prompt_tokens >= len(shared)
    assert scheduler.checkpoint_restores == 1
    assert scheduler.prompt_tokens_decoded - decoded == len(third_prompt) - third.done.cached_prompt_tokens
    # What a /metrics scrape reads, and the store's estimate bounds what the checkpoints hold.
    metrics = ServerMetrics()
    metrics.observe_engine([gemma])
    exported = metrics.render()
    assert 'edge_runtime_prefix_checkpoint_restores_total{model="gemma"} 1' in exported
    assert f'edge_runtime_prefix_checkpoint_bytes{{model="gemma"}} {scheduler.checkpoint_bytes}' in exported
    bound = estimate_memory(
        gemma.info, n_ctx=2048, n_seq=1, checkpoints_per_seq=CHECKPOINTS_PER_SLOT
    ).checkpoint_bytes
    assert 0 < scheduler.checkpoint_bytes <= bound

    # The same prompt read afresh (after an unrelated one, which shares nothing but BOS) answers the same.
    run(gemma, GenerationRequest(prose(gemma, "Unrelated:", 900, first=True), max_tokens=1))
    fresh = run(gemma, GenerationRequest(third_prompt, max_tokens=12))
    assert fresh.done.cached_prompt_tokens == 0
    assert fresh.tokens() == third.tokens() and len(third.tokens()) == 12


def test_a_slot_keeps_its_newest_checkpoints_and_matches_exact_prefixes() -> None:
    state = (ctypes.c_uint8 * 4)()
    checkpoints = SlotCheckpoints(limit=2)
    for prefix in ([1, 2, 3], [1, 2, 3, 4, 5], [1, 9, 9, 9]):
        checkpoints.add(PrefixCheckpoint(tuple(prefix), state))
    assert len(checkpoints) == 2 and not checkpoints.has([1, 2, 3])
    found = checkpoints.best_for([1, 2, 3, 4, 5, 6], cut=6)
    assert found is not None and found.position == 5
    assert checkpoints.best_for([1, 2, 3, 4, 5, 6], cut=4) is None
    assert checkpoints.best_for([1, 2, 3, 4, 7, 6], cut=6) is None
