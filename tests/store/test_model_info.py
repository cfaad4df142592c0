"""ModelInfo from headers, and the memory estimate checked against the buffers llama.cpp actually allocates."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from gguf_builder import Tensor, Value, gguf_bytes, llama_cpp_view, llm_metadata

from edge_runtime.errors import BadRequest
from edge_runtime.store import (
    GGUFFormatError,
    ModelInfo,
    estimate_memory,
    model_info_from_header,
    read_gguf_header,
)
from edge_runtime.store.gguf_reader import GGUFValueType as T

MiB = 2**20


def _info(path: Path) -> ModelInfo:
    return model_info_from_header(read_gguf_header(path))


def _matches_kv_cache_log(estimate_bytes: int, log: str) -> bool:
    """llama.cpp prints each KV cache (global, sliding-window) in MiB with two decimals."""
    sizes = re.findall(r"llama_kv_cache: size =\s+([0-9.]+) MiB", log)
    assert sizes, "llama.cpp printed no KV cache size"
    return abs(estimate_bytes / MiB - sum(float(s) for s in sizes)) <= 0.006 * len(sizes)


def _compute_buffer_bytes(log: str) -> int:
    sizes = re.findall(r"CPU compute buffer size =\s+([0-9.]+) MiB", log)
    assert sizes, "llama.cpp printed no compute buffer size"
    return round(max(float(s) for s in sizes) * MiB)


def test_tiny_model_info(tiny_model_path: Path) -> None:
    info = _info(tiny_model_path)
    facts = llama_cpp_view(tiny_model_path).facts
    assert info.architecture == "llama"
    assert info.quantization == "F32"
    assert info.parameter_count == facts["n_params"]
    assert info.weights_bytes == facts["size"]
    assert (info.context_length, info.vocab_size) == (facts["n_ctx_train"], facts["n_vocab"])
    assert (info.embedding_length, info.n_layer, info.n_head) == (
        facts["n_embd"],
        facts["n_layer"],
        facts["n_head"],
    )
    assert info.n_head_kv == (facts["n_head_kv"],) * info.n_layer == (2, 2)
    assert info.key_length == info.value_length == 16
    assert info.sliding_window is None and info.sliding_window_layers == (False, False)
    assert info.has_chat_template and "<|im_start|>" in (info.chat_template or "")
    assert info.model_type == "llm"
    assert (info.bos_token_id, info.eos_token_id) == (facts["bos"], facts["eos"])


@pytest.mark.gemma
def test_gemma_model_info(gemma_model_path: Path) -> None:
    info = _info(gemma_model_path)
    facts = llama_cpp_view(gemma_model_path).facts
    assert info.architecture == "gemma3"
    assert info.quantization == "Q4_K_M"
    assert info.vocab_size == 262_144 == facts["n_vocab"]
    assert info.parameter_count == facts["n_params"]
    assert info.context_length == 32_768
    assert info.n_head_kv == (1,) * 18
    assert (info.key_length, info.value_length) == (256, 256)
    assert info.sliding_window == facts["n_swa"] == 512
    assert [layer for layer, swa in enumerate(info.sliding_window_layers) if not swa] == [5, 11, 17]
    assert not info.has_chat_template
    assert (info.bos_token_id, info.eos_token_id) == (facts["bos"], facts["eos"])


def test_tiny_memory_estimate_matches_llama_cpp(tiny_model_path: Path) -> None:
    info = _info(tiny_model_path)
    view = llama_cpp_view(tiny_model_path, n_ctx=512, n_seq=2)
    estimate = estimate_memory(info, n_ctx=512, n_seq=2)
    assert estimate.weights_bytes == view.facts["size"]
    assert _matches_kv_cache_log(estimate.kv_cache_bytes, view.log)
    assert estimate.compute_bytes >= _compute_buffer_bytes(view.log)
    assert estimate.total_bytes == estimate.weights_bytes + estimate.kv_cache_bytes + estimate.compute_bytes


@pytest.mark.gemma
@pytest.mark.parametrize(
    ("n_ctx", "n_seq", "swa_full"), [(4096, 4, False), (32768, 1, False), (2048, 2, True)]
)
def test_gemma_memory_estimate_matches_llama_cpp(
    gemma_model_path: Path, n_ctx: int, n_seq: int, swa_full: bool
) -> None:
    info = _info(gemma_model_path)
    view = llama_cpp_view(gemma_model_path, n_ctx=n_ctx, n_seq=n_seq, swa_full=swa_full)
    estimate = estimate_memory(info, n_ctx=n_ctx, n_seq=n_seq, n_ubatch=128, swa_full=swa_full)
    assert estimate.weights_bytes == view.facts["size"]
    assert _matches_kv_cache_log(estimate.kv_cache_bytes, view.log)
    actual_compute = _compute_buffer_bytes(view.log)
    assert actual_compute <= estimate.compute_bytes <= 2 * actual_compute


def test_sliding_window_and_grouped_heads_shrink_the_kv_cache(write_file: Callable[[bytes], Path]) -> None:
    u32 = T.UINT32
    plain = _info(write_file(gguf_bytes(llm_metadata("gemma3", gemma3__attention__key_length=Value(u32, 8)))))
    windowed = _info(
        write_file(
            gguf_bytes(
                llm_metadata(
                    "gemma3",
                    gemma3__attention__key_length=Value(u32, 8),
                    gemma3__attention__sliding_window=Value(u32, 128),
                    gemma3__attention__head_count_kv=Value(T.ARRAY, [1, 2], u32),
                )
            )
        )
    )
    assert windowed.sliding_window_layers == (True, True)  # gemma3's pattern: layers 5, 11, ... are global
    assert windowed.n_head_kv == (1, 2)
    assert plain.n_head_kv == (4, 4)
    full = estimate_memory(plain, n_ctx=4096, n_seq=1)
    capped = estimate_memory(windowed, n_ctx=4096, n_seq=1)
    # per cell: heads x (key 8 + value 8 (= n_embd 32 / 4 heads)) x 2 bytes
    assert full.kv_cache_bytes == 4096 * (4 + 4) * 16 * 2
    assert capped.kv_cache_bytes == 256 * (1 + 2) * 16 * 2  # window 128 + ubatch 128, padded to 256 cells
    assert estimate_memory(windowed, n_ctx=4096, n_seq=1, swa_full=True).kv_cache_bytes == 4096 * 3 * 16 * 2
    assert estimate_memory(windowed, n_ctx=4096, n_seq=4).kv_cache_bytes == 4 * capped.kv_cache_bytes
    # Prefix checkpoints: each a sequence's window on its sliding layers, kept only when the window alone is.
    with_checkpoints = estimate_memory(windowed, n_ctx=4096, n_seq=4, checkpoints_per_seq=2)
    assert with_checkpoints.checkpoint_bytes == 4 * 2 * capped.kv_cache_bytes
    assert (
        with_checkpoints.total_bytes
        == estimate_memory(windowed, n_ctx=4096, n_seq=4).total_bytes + 8 * 256 * 96
    )
    assert (
        estimate_memory(windowed, n_ctx=4096, n_seq=4, swa_full=True, checkpoints_per_seq=2).checkpoint_bytes
        == 0
    )
    assert estimate_memory(plain, n_ctx=4096, n_seq=4, checkpoints_per_seq=2).checkpoint_bytes == 0


def test_explicit_sliding_window_pattern(write_file: Callable[[bytes], Path]) -> None:
    pattern = Value(T.ARRAY, [True, False], T.BOOL)
    info = _info(
        write_file(
            gguf_bytes(
                llm_metadata(
                    "llama",
                    llama__attention__sliding_window=Value(T.UINT32, 64),
                    llama__attention__sliding_window_pattern=pattern,
                )
            )
        )
    )
    assert info.sliding_window_layers == (True, False)


def test_model_type_embedding_from_architecture_or_pooling(write_file: Callable[[bytes], Path]) -> None:
    assert _info(write_file(gguf_bytes(llm_metadata("bert")))).model_type == "embedding"
    pooled = llm_metadata("qwen3", qwen3__pooling_type=Value(T.UINT32, 3))
    assert _info(write_file(gguf_bytes(pooled))).model_type == "embedding"
    no_pooling = llm_metadata("qwen3", qwen3__pooling_type=Value(T.UINT32, 0))
    assert _info(write_file(gguf_bytes(no_pooling))).model_type == "llm"


def test_quantization_from_file_type_or_dominant_tensor_type(write_file: Callable[[bytes], Path]) -> None:
    tensors = [Tensor("big", (64, 2), 8, bytes(34 * 4)), Tensor("small", (8,), 0, bytes(32))]
    info = _info(write_file(gguf_bytes(llm_metadata(), tensors)))
    assert info.quantization == "Q8_0"
    assert info.parameter_count == 136
    assert info.weights_bytes == 34 * 4 + 32
    typed = llm_metadata(general__file_type=Value(T.UINT32, 7))
    assert _info(write_file(gguf_bytes(typed, tensors))).quantization == "Q8_0"
    typed = llm_metadata(general__file_type=Value(T.UINT32, 18))
    assert _info(write_file(gguf_bytes(typed, tensors))).quantization == "Q6_K"


def test_missing_facts_are_format_errors(write_file: Callable[[bytes], Path]) -> None:
    no_arch = [item for item in llm_metadata() if item[0] != "general.architecture"]
    with pytest.raises(GGUFFormatError, match="general.architecture is missing"):
        _info(write_file(gguf_bytes(no_arch)))
    no_layers = [item for item in llm_metadata() if item[0] != "llama.block_count"]
    with pytest.raises(GGUFFormatError, match="llama.block_count is missing"):
        _info(write_file(gguf_bytes(no_layers)))
    bad_heads = llm_metadata(llama__attention__head_count_kv=Value(T.ARRAY, [1, 1, 1], T.UINT32))
    with pytest.raises(GGUFFormatError, match="head_count_kv must be"):
        _info(write_file(gguf_bytes(bad_heads)))


def test_estimate_refuses_nonsense_sizes(tiny_model_path: Path) -> None:
    info = _info(tiny_model_path)
    for kwargs in ({"n_ctx": 0, "n_seq": 1}, {"n_ctx": 512, "n_seq": 0}, {"n_ctx": 2, "n_seq": 4}):
        with pytest.raises(BadRequest):
            estimate_memory(info, **kwargs)
