"""`--kv-unified`: one KV stream for every slot, so a step of uneven token counts is one forward pass. Each job
still reads its own sequence's logits; a model with a sliding window is refused before it loads."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import llama_cpp as llama
import pytest
from engine_support import TINY_CONFIG
from test_batch_order import all_at_once, assert_each_as_alone, prompts

from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.errors import ModelUnavailable


def test_jobs_on_one_unified_cache_read_their_own_logits(
    make_tiny_llm: Callable[[EngineConfig], LoadedModel],
) -> None:
    model = make_tiny_llm(dataclasses.replace(TINY_CONFIG, unified_kv=True))
    context = model._context
    assert context is not None  # one stream: any sequence may use the whole cache, which llama.cpp reports
    assert llama.llama_n_ctx_seq(context.handle) == TINY_CONFIG.n_slots * TINY_CONFIG.n_ctx_per_slot
    asked = prompts(model)
    all_at_once(model, asked, [0, 1, 2, 3])

    answers = all_at_once(model, asked, [3, 2, 1, 0])

    assert all(answers[i].done.cached_prompt_tokens == len(asked[i]) - 1 for i in answers)
    assert_each_as_alone(make_tiny_llm, asked, answers)
    all_at_once(model, asked, [0, 2])  # a gap between busy slots: nothing to move in one stream
    assert model.scheduler is not None and model.scheduler.slots_moved == 0


def test_a_sliding_window_model_is_refused_before_it_loads(gemma_model_path: Path) -> None:
    config = dataclasses.replace(TINY_CONFIG, unified_kv=True)
    with pytest.raises(ModelUnavailable, match="sliding window"):
        LoadedModel(gemma_model_path, "gemma", config, free_bytes=1 << 40)
