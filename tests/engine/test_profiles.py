"""`serve --profile small`'s settings reach llama.cpp (one slot of 2,048 tokens, a 64-token micro-batch, a q8_0
KV cache, the model file mapped), and a model whose heads q8_0 cannot hold keeps f16, in its estimate too."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import llama_cpp as llama
import pytest
from engine_support import RunGeneration

from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel, required_bytes
from edge_runtime.engine.profiles import profile_config
from edge_runtime.engine.types import GenerationRequest
from edge_runtime.store import estimate_memory, model_info_from_header, read_gguf_header

SMALL = dataclasses.replace(profile_config("small"), n_threads=1)


def context_of(model: LoadedModel) -> llama.llama_context_p:
    assert model.scheduler is not None
    return model.scheduler.context.handle


def mapped(path: Path) -> bool:
    return str(path.resolve()) in Path("/proc/self/maps").read_text()


@pytest.mark.smollm2
def test_the_small_profile_reaches_llama_cpp(smollm2_model_path: Path, run: RunGeneration) -> None:
    read = LoadedModel(smollm2_model_path, "read", EngineConfig(n_slots=1, n_ctx_per_slot=2048, n_threads=1))
    try:
        assert not mapped(smollm2_model_path), "the default reads the file into memory"
        small = LoadedModel(smollm2_model_path, "small", SMALL)
        try:
            assert mapped(smollm2_model_path)
            handle = context_of(small)
            assert llama.llama_n_ctx(handle) == 2048 and llama.llama_n_seq_max(handle) == 1
            assert llama.llama_n_ubatch(handle) == 64
            assert small.kv_cache_type == "q8_0"
            prompt = small.tokenize("The engineers measured the bridge twice, once in the cold morning.")
            for model in (small, read):
                assert run(model, GenerationRequest(prompt, max_tokens=4)).done.completion_tokens == 4
            # The same tokens' KV rows: q8_0 stores 34 bytes per 32 values where f16 stores 64.
            saved = llama.llama_state_seq_get_size(handle, 0) / llama.llama_state_seq_get_size(
                context_of(read), 0
            )
            assert 0.45 < saved < 0.6
        finally:
            small.close()
    finally:
        read.close()


def test_heads_q8_0_cannot_hold_keep_f16_in_the_cache_and_the_estimate(
    tiny_model_path: Path, run: RunGeneration
) -> None:
    info = model_info_from_header(read_gguf_header(tiny_model_path))
    assert info.key_length % 32 != 0, "the tiny model's heads are 16 values"
    f16 = estimate_memory(info, n_ctx=2048, n_seq=1, n_ubatch=64, kv_cache_type="f16").total_bytes
    assert required_bytes(info, SMALL, "llm") == f16
    model = LoadedModel(tiny_model_path, "tiny", SMALL)
    try:
        assert model.kv_cache_type == "f16"
        prompt = model.tokenize("hello there")
        assert run(model, GenerationRequest(prompt, max_tokens=3)).done.completion_tokens == 3
    finally:
        model.close()
