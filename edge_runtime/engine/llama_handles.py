"""Owners of llama.cpp's native handles (model, context, batch) through llama-cpp-python's low-level binding.

Each class owns one handle: construction raises a typed error when llama.cpp returns NULL, `close()` is
idempotent, and a context is always freed before the model it was made from.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

import llama_cpp as llama
import numpy as np

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.store.model_info import KvCacheType

GGML_KV_TYPES: dict[KvCacheType, int] = {"f16": llama.GGML_TYPE_F16, "q8_0": llama.GGML_TYPE_Q8_0}


class LlamaError(EdgeRuntimeError):
    """llama.cpp refused to load a model or create a context."""


class DecodeNoSlot(EdgeRuntimeError):
    """`llama_decode` returned 1: no KV cache slot for the batch. Recoverable: shrink the batch or free memory."""


class DecodeFailed(EdgeRuntimeError):
    """`llama_decode` failed for a reason other than a full cache; the context is no longer usable."""


@llama.llama_log_callback
def _discard_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp prints hundreds of lines per load; this callback lives as long as the module (a collected
    callback would crash the process at the next log line)."""


_backend_lock = threading.Lock()
_backend_ready = False


def _init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            llama.llama_backend_init()
            llama.llama_log_set(_discard_log, ctypes.c_void_p())
            _backend_ready = True


def extra_buffer_types_allowed() -> bool:
    """Whether llama.cpp may repack weights into its extra CPU buffer types. Not when the build has AMX: its
    AMX matmul dies of SIGILL on AMX machines (tile permission and config are set up on one thread only,
    llama.cpp PR 26954), and a model's first decode would kill the server. The plain kernels stay."""
    return b"AMX_INT8 = 1" not in llama.llama_print_system_info()


class LlamaModel:
    """The weights and vocabulary of one GGUF file, read into process memory rather than memory-mapped: a
    mapped file truncated under a loaded model ends the process with SIGBUS (and root ignores the store's
    read-only modes). Measured on Gemma 3 270M, 2 shared cores: without extra buffer types (load average 18)
    RSS after a decode is 334 MiB either way (306 MiB private read, or 263 MiB of page cache mapped, which the
    kernel could evict or share), load 2.4-3.2 s read vs 2.1-2.6 s mapped; with them (load average 13), 521
    vs 544 MiB, as repacked weights are copied out of the map anyway.

    `mmap=True` maps the file instead (`serve --profile small`): its pages are page cache the kernel may drop
    under memory pressure and read again, at the risk above (the store's files are read-only and replaced by
    rename, never rewritten in place, so only a hand-truncated file ends the process)."""

    def __init__(self, path: Path, *, mmap: bool = False) -> None:
        _init_backend()
        params = llama.llama_model_default_params()
        params.n_gpu_layers = 0
        params.load_mode = llama.LLAMA_LOAD_MODE_MMAP if mmap else llama.LLAMA_LOAD_MODE_NONE
        params.use_extra_bufts = extra_buffer_types_allowed()
        handle = llama.llama_model_load_from_file(str(path).encode(), params)
        if not handle:
            raise LlamaError(f"llama.cpp could not load the model file {path}")
        self.handle = handle
        self.path = path
        self.vocab = llama.llama_model_get_vocab(handle)
        self.n_vocab = int(llama.llama_vocab_n_tokens(self.vocab))
        self.n_embd = int(llama.llama_model_n_embd(handle))
        self.n_ctx_train = int(llama.llama_model_n_ctx_train(handle))
        self.n_swa = int(llama.llama_model_n_swa(handle))
        """Positions a sliding-window layer attends to (0: the model has no such layers)."""

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(256)
        n = llama.llama_model_meta_val_str(self.handle, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            llama.llama_model_meta_val_str(self.handle, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    def close(self) -> None:
        if self.handle:
            llama.llama_model_free(self.handle)
            self.handle = None


@dataclass(frozen=True)
class ContextParams:
    n_ctx_per_seq: int
    n_seq: int
    n_batch: int
    n_ubatch: int
    n_threads: int
    embeddings: bool = False
    pooling_type: int = llama.LLAMA_POOLING_TYPE_UNSPECIFIED
    unified_kv: bool = False
    """One cache for all sequences: llama.cpp then cuts a batch into micro-batches in token order, instead of
    taking the same number of tokens from each sequence (which splits a sequence that pooling needs whole)."""
    kv_cache_type: KvCacheType = "f16"
    swa_full: bool = False
    """Keep the whole context on sliding-window layers too, so a cut anywhere keeps its window (more memory)."""


def flash_attention(kv_cache_type: KvCacheType, *, sliding_window: bool, embeddings: bool = False) -> int:
    """llama.cpp's flash_attn_type for a context: off over an f16 cache for a model whose layers all attend
    over the whole context, because this llama.cpp's flash attention on the CPU slows down with the cached
    tokens a layer reads: SmolLM2 at position 800, a 49-token chunk 1,060 -> 385 ms and one token 28 -> 19 ms,
    its extraction workload 0.23-0.35 -> 0.40-0.48 documents/s. A sliding-window model reads at most its window
    on most layers; Gemma 3 decodes as fast with it or a few percent faster (36.9 tokens/s with it against 34.6
    without after a 24-token prompt, 32.3 against 32.1 after 800), so llama.cpp chooses, as it does for a
    quantized V cache (which needs flash attention) and for embedding contexts."""
    if kv_cache_type == "f16" and not sliding_window and not embeddings:
        return int(llama.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    return int(llama.LLAMA_FLASH_ATTN_TYPE_AUTO)


class LlamaContext:
    """One llama.cpp context with `n_seq` independent sequences of `n_ctx_per_seq` tokens each."""

    def __init__(self, model: LlamaModel, params: ContextParams) -> None:
        cparams = llama.llama_context_default_params()
        cparams.n_ctx = params.n_ctx_per_seq * params.n_seq
        cparams.n_seq_max = params.n_seq
        cparams.n_batch = params.n_batch
        cparams.n_ubatch = params.n_ubatch
        cparams.n_threads = params.n_threads
        cparams.n_threads_batch = params.n_threads
        cparams.embeddings = params.embeddings
        cparams.pooling_type = params.pooling_type
        cparams.kv_unified = params.unified_kv
        cparams.type_k = cparams.type_v = GGML_KV_TYPES[params.kv_cache_type]
        cparams.flash_attn_type = flash_attention(
            params.kv_cache_type, sliding_window=model.n_swa > 0, embeddings=params.embeddings
        )
        cparams.swa_full = params.swa_full
        """Off by default: sliding-window layers keep only the window (plus a micro-batch) per sequence; on
        Gemma 3 270M at 4 x 4096 that is 196 MiB less than a full-size cache. Prefix reuse then cuts only
        where the window before the cut is still held (`remove`)."""
        cparams.no_perf = True
        handle = llama.llama_init_from_model(model.handle, cparams)
        if not handle:
            raise LlamaError(f"llama.cpp could not create a context for {model.path} ({params})")
        self.handle = handle
        self.model = model
        self.params = params
        self.memory = llama.llama_get_memory(handle)
        self.n_vocab = model.n_vocab

    def decode(self, batch: Batch) -> None:
        code = llama.llama_decode(self.handle, batch.handle)
        if code == 1:
            raise DecodeNoSlot("no KV cache slot for the batch")
        if code != 0:
            raise DecodeFailed(f"llama_decode returned {code}")

    def logits(self, batch_index: int) -> np.ndarray:
        """A float32 view (no copy) of the logits of the batch entry `batch_index`; valid until the next decode."""
        pointer = llama.llama_get_logits_ith(self.handle, batch_index)
        if not pointer:
            raise DecodeFailed(f"no logits for batch entry {batch_index}")
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def sequence_embedding(self, seq_id: int, n_embd: int) -> np.ndarray:
        pointer = llama.llama_get_embeddings_seq(self.handle, seq_id)
        if not pointer:
            raise DecodeFailed(f"no pooled embedding for sequence {seq_id}")
        return np.ctypeslib.as_array(pointer, shape=(n_embd,)).copy()

    def token_embedding(self, batch_index: int, n_embd: int) -> np.ndarray:
        pointer = llama.llama_get_embeddings_ith(self.handle, batch_index)
        if not pointer:
            raise DecodeFailed(f"no embedding for batch entry {batch_index}")
        return np.ctypeslib.as_array(pointer, shape=(n_embd,)).copy()

    def remove(self, seq_id: int, start: int = 0, end: int = -1) -> bool:
        """Forget positions [start, end) of a sequence; False (and nothing forgotten) when the cache cannot cut
        there: the next token after a cut attends over the window before it, which a sliding-window cache
        has already overwritten once the sequence went on for longer than the cache's spare cells."""
        if end < 0 and start > 0 and not self.holds_window_before(seq_id, start):
            return False
        return bool(llama.llama_memory_seq_rm(self.memory, seq_id, start, end))

    def holds_window_before(self, seq_id: int, position: int) -> bool:
        """Whether every position a token at `position` attends to is still cached (as llama-server checks
        before it reuses a slot's cache: the oldest kept position at most `position - n_swa`)."""
        if self.model.n_swa <= 0 or self.params.swa_full:
            return True
        oldest = int(llama.llama_memory_seq_pos_min(self.memory, seq_id))
        return oldest <= max(0, position - self.model.n_swa)

    @property
    def keeps_window_only(self) -> bool:
        """Sliding-window layers hold only their window: a cut far back needs a saved window (checkpoints)."""
        return self.model.n_swa > 0 and not self.params.swa_full

    def save_window(self, seq_id: int) -> ctypes.Array[ctypes.c_uint8]:
        """A copy of the sequence's sliding-window cache (its full-attention layers are left out)."""
        flags = llama.LLAMA_STATE_SEQ_FLAGS_SWA_ONLY
        size = llama.llama_state_seq_get_size_ext(self.handle, seq_id, flags)
        state = (ctypes.c_uint8 * size)()
        if llama.llama_state_seq_get_data_ext(self.handle, state, size, seq_id, flags) != size:
            raise DecodeFailed(f"could not copy out the window of sequence {seq_id}")
        return state

    def restore_window(self, seq_id: int, position: int, state: ctypes.Array[ctypes.c_uint8]) -> bool:
        """Cut the sequence back to `position` and set its sliding-window cache to `state`, saved when the
        sequence was exactly that long. False (and the sequence emptied) when llama.cpp refuses the state."""
        llama.llama_memory_seq_rm(self.memory, seq_id, position, -1)
        flags = llama.LLAMA_STATE_SEQ_FLAGS_SWA_ONLY
        if llama.llama_state_seq_set_data_ext(self.handle, state, len(state), seq_id, flags) == len(state):
            return True
        llama.llama_memory_seq_rm(self.memory, seq_id, 0, -1)
        return False

    def copy(self, src: int, dst: int, start: int = 0, end: int = -1) -> None:
        llama.llama_memory_seq_cp(self.memory, src, dst, start, end)

    def clear(self) -> None:
        llama.llama_memory_clear(self.memory, True)

    def close(self) -> None:
        if self.handle:
            llama.llama_free(self.handle)
            self.handle = None


class Batch:
    """A reusable llama_batch of up to `capacity` tokens, each in exactly one sequence. Its arrays are numpy
    views, so filling a step costs no per-field ctypes calls."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.handle = llama.llama_batch_init(capacity, 0, 1)
        self._tokens = np.ctypeslib.as_array(self.handle.token, shape=(capacity,))
        self._positions = np.ctypeslib.as_array(self.handle.pos, shape=(capacity,))
        self._n_seq = np.ctypeslib.as_array(self.handle.n_seq_id, shape=(capacity,))
        self._logits = np.ctypeslib.as_array(self.handle.logits, shape=(capacity,))
        self._seq_rows = [self.handle.seq_id[i] for i in range(capacity)]
        self._seq_ids = np.zeros(capacity, dtype=np.int32)
        self._n_seq[:] = 1
        self.size = 0

    def clear(self) -> None:
        self.size = 0
        self.handle.n_tokens = 0

    @property
    def free(self) -> int:
        return self.capacity - self.size

    def add(self, token: int, position: int, seq_id: int, want_logits: bool) -> int:
        """Append one token; returns its index in the batch (where its logits will be)."""
        index = self.size
        if index >= self.capacity:
            raise ValueError(f"batch is full ({self.capacity} tokens)")
        self._tokens[index] = token
        self._positions[index] = position
        self._seq_rows[index][0] = seq_id
        self._seq_ids[index] = seq_id
        self._logits[index] = want_logits
        self.size = index + 1
        self.handle.n_tokens = self.size
        return index

    def order_by_sequence(self) -> np.ndarray | None:
        """Sort the rows by sequence id, each sequence's rows keeping their order; returns the new index of each
        old row, or None when they were in order already. Over a cache with a stream per sequence, llama.cpp
        puts sequences in one micro-batch (one forward pass) only while their ids come in increasing, consecutive
        order: four one-token sequences in the order 3, 2, 1, 0 cost four passes instead of one."""
        n = self.size
        seq_ids = self._seq_ids[:n]
        if n < 2 or bool(np.all(seq_ids[1:] >= seq_ids[:-1])):
            return None
        order = np.argsort(seq_ids, kind="stable")
        for array in (self._tokens, self._positions, self._logits, self._seq_ids):
            array[:n] = array[:n][order]
        for index, seq_id in enumerate(self._seq_ids[:n].tolist()):
            self._seq_rows[index][0] = seq_id
        moved = np.empty(n, dtype=np.intp)
        moved[order] = np.arange(n)
        return moved

    def close(self) -> None:
        if self.handle is not None:
            llama.llama_batch_free(self.handle)
            self.handle = None
