"""What a GGUF header says about a model, and how much RAM loading it will take."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from edge_runtime.errors import BadRequest
from edge_runtime.store.ggml_types import FILE_TYPE_NAMES
from edge_runtime.store.gguf_reader import GGUFFormatError, GGUFHeader, MetadataValue

ModelType = Literal["llm", "embedding"]
KvCacheType = Literal["f16", "q8_0"]
"""How llama.cpp stores the KV cache: f16 (its default), or q8_0 (blocks of 32 values in 34 bytes, about half)."""

EMBEDDING_ARCHITECTURES = frozenset(
    {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "neo-bert", "modern-bert"}
)
# llama.cpp hard-codes the sliding-window layer pattern for these architectures when the GGUF does not carry
# {arch}.attention.sliding_window_pattern: every n-th layer attends globally, the others use the window.
SLIDING_WINDOW_PERIOD_BY_ARCHITECTURE = {"gemma2": 2, "gemma3": 6, "cohere2": 4}

KV_BYTES_PER_VALUE: dict[KvCacheType, float] = {"f16": 2.0, "q8_0": 34 / 32}
KV_CELL_PADDING = 256  # llama.cpp sizes a sliding-window cache in multiples of 256 cells
F32_BYTES = 4


@dataclass(frozen=True)
class ModelInfo:
    """The facts about a model the store, the CLI and the loader need, all taken from its header."""

    architecture: str
    name: str | None
    parameter_count: int
    quantization: str
    weights_bytes: int
    context_length: int
    vocab_size: int
    embedding_length: int
    feed_forward_length: int
    n_layer: int
    n_head: int
    n_head_kv: tuple[int, ...]  # per layer: grouped-query attention may vary it
    key_length: int
    value_length: int
    sliding_window: int | None
    sliding_window_layers: tuple[bool, ...]  # per layer: True where attention is limited to the window
    chat_template: str | None
    model_type: ModelType
    bos_token_id: int | None
    eos_token_id: int | None

    @property
    def has_chat_template(self) -> bool:
        return self.chat_template is not None


def model_info_from_header(header: GGUFHeader) -> ModelInfo:
    """Derive a `ModelInfo`; a header missing what every model needs (architecture, sizes) is refused."""
    architecture = header.str_value("general.architecture")
    if not architecture:
        raise GGUFFormatError(header.path, "general.architecture is missing")

    def required_int(suffix: str) -> int:
        value = header.int_value(f"{architecture}.{suffix}")
        if value is None or value <= 0:
            raise GGUFFormatError(
                header.path, f"{architecture}.{suffix} is missing or not a positive integer"
            )
        return value

    n_layer = required_int("block_count")
    embedding_length = required_int("embedding_length")
    n_head = _head_count(header, f"{architecture}.attention.head_count", n_layer, default=None)
    n_head_kv = _head_count(header, f"{architecture}.attention.head_count_kv", n_layer, default=n_head)
    head_dim = embedding_length // max(n_head)
    sliding_window = header.int_value(f"{architecture}.attention.sliding_window")
    pooling_type = header.int_value(f"{architecture}.pooling_type")

    return ModelInfo(
        architecture=architecture,
        name=header.str_value("general.name"),
        parameter_count=sum(t.n_elements for t in header.tensors),
        quantization=_quantization(header),
        weights_bytes=sum(t.n_bytes for t in header.tensors),
        context_length=required_int("context_length"),
        vocab_size=_vocab_size(header, architecture),
        embedding_length=embedding_length,
        feed_forward_length=_first_int(header.metadata.get(f"{architecture}.feed_forward_length")) or 0,
        n_layer=n_layer,
        n_head=max(n_head),
        n_head_kv=n_head_kv,
        key_length=header.int_value(f"{architecture}.attention.key_length") or head_dim,
        value_length=header.int_value(f"{architecture}.attention.value_length") or head_dim,
        sliding_window=sliding_window,
        sliding_window_layers=_sliding_window_layers(header, architecture, n_layer, sliding_window),
        chat_template=header.str_value("tokenizer.chat_template"),
        model_type="embedding"
        if architecture in EMBEDDING_ARCHITECTURES or (pooling_type is not None and pooling_type > 0)
        else "llm",
        bos_token_id=header.int_value("tokenizer.ggml.bos_token_id"),
        eos_token_id=header.int_value("tokenizer.ggml.eos_token_id"),
    )


def _first_int(value: MetadataValue | None) -> int | None:
    if isinstance(value, list):
        value = max((v for v in value if isinstance(v, int)), default=None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _head_count(
    header: GGUFHeader, key: str, n_layer: int, default: tuple[int, ...] | None
) -> tuple[int, ...]:
    value = header.metadata.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return (value,) * n_layer
    if isinstance(value, list) and len(value) == n_layer and all(isinstance(v, int) for v in value):
        counts = tuple(int(v) for v in value)  # type: ignore[arg-type]
        if max(counts) > 0:
            return counts
    raise GGUFFormatError(header.path, f"{key} must be a positive integer or one per layer, got {value!r}")


def _quantization(header: GGUFHeader) -> str:
    file_type = header.int_value("general.file_type")
    if file_type is not None and file_type in FILE_TYPE_NAMES:
        return FILE_TYPE_NAMES[file_type]
    elements_by_type: Counter[str] = Counter()
    for tensor in header.tensors:
        elements_by_type[tensor.ggml_type.name] += tensor.n_elements
    return elements_by_type.most_common(1)[0][0] if elements_by_type else "unknown"


def _vocab_size(header: GGUFHeader, architecture: str) -> int:
    size = header.array_length("tokenizer.ggml.tokens") or header.int_value(f"{architecture}.vocab_size")
    if not size:
        raise GGUFFormatError(header.path, "the vocabulary size is missing (no tokenizer.ggml.tokens)")
    return size


def _sliding_window_layers(
    header: GGUFHeader, architecture: str, n_layer: int, sliding_window: int | None
) -> tuple[bool, ...]:
    if not sliding_window:
        return (False,) * n_layer
    pattern = header.metadata.get(f"{architecture}.attention.sliding_window_pattern")
    if isinstance(pattern, list) and len(pattern) == n_layer and all(isinstance(p, bool) for p in pattern):
        return tuple(bool(p) for p in pattern)
    period = pattern if isinstance(pattern, int) and not isinstance(pattern, bool) else None
    period = period or SLIDING_WINDOW_PERIOD_BY_ARCHITECTURE.get(architecture)
    if period is None:
        return (True,) * n_layer
    return tuple(layer % period < period - 1 for layer in range(n_layer))


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a loaded model needs, by part; see `estimate_memory` for the formula."""

    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    checkpoint_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.checkpoint_bytes


def estimate_memory(
    info: ModelInfo,
    *,
    n_ctx: int,
    n_seq: int,
    n_ubatch: int = 128,
    swa_full: bool = False,
    kv_cache_type: KvCacheType = "f16",
    checkpoints_per_seq: int = 0,
) -> MemoryEstimate:
    """Estimate the RAM for `info` loaded by llama.cpp with `n_ctx` KV cells in total over `n_seq` sequences.

    Follows llama.cpp's per-sequence KV streams (its default, kv_unified off): each sequence owns n_ctx / n_seq
    cells. Pass the same `swa_full` the context is created with (llama.cpp's own default is True).
    weights  = the tensors' bytes as stored.
    KV cache = sum over layers of cells x n_head_kv(layer) x (key_length + value_length) x 2 bytes (f16; 34/32
               for q8_0), where
               cells = n_ctx for a global-attention layer, and for a sliding-window layer (unless swa_full)
               n_seq x min(n_ctx / n_seq, round_up(window + n_ubatch, 256)): only the window is kept.
    compute  = n_ubatch x vocab x 4 (the logits of a micro-batch, the largest buffer: 128 MiB for Gemma 3's
               262,144 tokens at n_ubatch 128) + n_ubatch x 4 x (4 x n_embd + 2 x n_ff + n_head x n_ctx)
               (hidden states, the feed-forward and the attention scores of one micro-batch; an upper bound).
    checkpoints = n_seq x checkpoints_per_seq x one sequence's sliding-window cells (prefix checkpoints: saved
               windows, kept only when the window alone is cached; 0 otherwise).
    """
    if n_ctx <= 0 or n_seq <= 0 or n_ubatch <= 0:
        raise BadRequest(f"n_ctx, n_seq and n_ubatch must be positive (got {n_ctx}, {n_seq}, {n_ubatch})")
    if n_ctx < n_seq:
        raise BadRequest(f"n_ctx {n_ctx} cannot be shared by {n_seq} sequences")
    cells_per_seq = n_ctx // n_seq
    window_cells = cells_per_seq
    if info.sliding_window and not swa_full:
        window_cells = min(cells_per_seq, _round_up(info.sliding_window + n_ubatch, KV_CELL_PADDING))
    kv_bytes = window_bytes = 0
    for layer in range(info.n_layer):
        sliding = info.sliding_window_layers[layer]
        cells = n_seq * (window_cells if sliding else cells_per_seq)
        per_cell = (
            info.n_head_kv[layer] * (info.key_length + info.value_length) * KV_BYTES_PER_VALUE[kv_cache_type]
        )
        kv_bytes += int(cells * per_cell)
        window_bytes += int(window_cells * per_cell) if sliding else 0
    keeps_checkpoints = bool(info.sliding_window) and not swa_full
    logits_bytes = n_ubatch * info.vocab_size * F32_BYTES
    activation_bytes = (
        n_ubatch
        * F32_BYTES
        * (4 * info.embedding_length + 2 * info.feed_forward_length + info.n_head * n_ctx)
    )
    return MemoryEstimate(
        weights_bytes=info.weights_bytes,
        kv_cache_bytes=kv_bytes,
        compute_bytes=logits_bytes + activation_bytes,
        checkpoint_bytes=n_seq * checkpoints_per_seq * window_bytes if keeps_checkpoints else 0,
    )


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
