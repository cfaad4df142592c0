"""A model loaded for serving: the facade the API layer calls (tokenize, generate, embed, vocabulary)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio

from edge_runtime.engine.embeddings import Embedder, Pooling, Truncation
from edge_runtime.engine.huge_pages import IDLE_COLLAPSE
from edge_runtime.engine.llama_handles import ContextParams, LlamaContext, LlamaModel
from edge_runtime.engine.prefix_checkpoints import CHECKPOINTS_PER_SLOT
from edge_runtime.engine.scheduler import BatchScheduler, Reservation
from edge_runtime.engine.tokenizer import Tokenizer
from edge_runtime.engine.types import GenerationEvent, GenerationRequest
from edge_runtime.errors import InsufficientMemory, ModelUnavailable, WrongModelType
from edge_runtime.grammar import Vocabulary
from edge_runtime.store.gguf_reader import read_gguf_header
from edge_runtime.store.model_info import KvCacheType, ModelInfo, estimate_memory, model_info_from_header

ModelType = Literal["llm", "embedding"]
log = logging.getLogger(__name__)


def physical_cores() -> int:
    """Cores, not hyper-threads: llama.cpp's decode gets slower with more threads than physical cores."""
    try:
        pairs = set()
        block: dict[str, str] = {}
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in [*file, ""]:
                if not line.strip():
                    if "core id" in block:
                        pairs.add((block.get("physical id", "0"), block["core id"]))
                    block = {}
                elif ":" in line:
                    key, _, value = line.partition(":")
                    block[key.strip()] = value.strip()
        if pairs:
            return len(pairs)
    except OSError:
        pass
    return os.cpu_count() or 1


@dataclass(frozen=True)
class EngineConfig:
    n_slots: int = 4
    """Sequences decoded side by side per model (each request's n / best_of choices take one each)."""
    n_ctx_per_slot: int = 4096
    n_threads: int = 0
    """0: one per physical core. They spin only briefly when they wait for each other (OpenMP's spin count is
    bounded in edge_runtime/engine/__init__.py), so another process busy on a core slows a decode down
    instead of stalling it (scripts/bench_contention.py)."""
    n_batch: int = 512
    """Tokens in one decode step (next tokens of running sequences plus prompt chunks)."""
    n_ubatch: int = 128
    """llama.cpp's micro-batch: its compute buffer grows with n_ubatch x vocabulary. Measured by
    scripts/bench_engine.py --ubatch-sweep (Gemma 3 270M, 2 threads, idle machine): 250 / 329 / 377 / 367 prompt
    tokens/s at 32 / 64 / 128 / 256."""
    queue_size: int = 16
    kv_cache_type: KvCacheType = "f16"
    """q8_0 halves the generation context's KV cache (embeddings keep f16)."""
    swa_full: bool = False
    """Keep the full KV cache on sliding-window layers (Gemma 3's): prefix reuse then cuts anywhere, at
    196 MiB more on Gemma 3 270M at 4 x 4096. Off, they keep their window and prefix checkpoints."""
    unified_kv: bool = False
    """One KV stream for all slots (llama.cpp's kv_unified) instead of one per slot: a step of uneven token counts
    (a forced run beside single tokens) is one forward pass instead of one per count, but a token's logits then
    depend on the other sequences in the cache, so a seeded request draws the same tokens alone, not always
    beside others. Models with a sliding window are refused (their window-only cache is kept per slot)."""
    draft_tokens: int = 4
    """Most tokens guessed by prompt lookup (prompt_lookup.py) and checked in the same decode as a sequence's
    next token; 0: one token per sequence per decode."""
    huge_pages: bool = True
    """While the server is idle, move the process's resident anonymous memory (read-in weights, KV cache,
    Python's heap) onto transparent huge pages (engine/huge_pages.py): a decode after a rest then walks far
    fewer page-table entries."""
    mmap: bool = False
    """Map the model file instead of reading it into memory: see LlamaModel for what that risks."""
    embedding_ctx: int = 512
    embedding_seqs: int = 8
    embedding_pooling: Pooling = "model"
    memory_budget_bytes: int | None = None
    """Loaded models' estimated total may not exceed this (least recently used are unloaded first);
    None: what the machine has available."""
    idle_unload_s: float | None = None
    """Unload a model no request has asked for in this many seconds (it loads again on next use);
    None keeps models loaded."""

    @property
    def threads(self) -> int:
        return self.n_threads if self.n_threads > 0 else physical_cores()


def available_memory_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 1 << 62


Q8_0_BLOCK = 32
"""Values in one q8_0 block: llama.cpp quantizes a KV cache row only when its heads are whole blocks."""


def kv_cache_type_for(info: ModelInfo, config: EngineConfig) -> KvCacheType:
    """The configured KV cache type, or f16 for a model whose key or value heads are not whole q8_0 blocks
    (llama.cpp would refuse to create the context)."""
    if config.kv_cache_type == "q8_0" and (info.key_length % Q8_0_BLOCK or info.value_length % Q8_0_BLOCK):
        return "f16"
    return config.kv_cache_type


def required_bytes(info: ModelInfo, config: EngineConfig, model_type: ModelType) -> int:
    if model_type == "embedding":
        estimate = estimate_memory(
            info,
            n_ctx=config.embedding_ctx * config.embedding_seqs,
            n_seq=config.embedding_seqs,
            n_ubatch=config.embedding_ctx,
            swa_full=False,
        )
    else:
        estimate = estimate_memory(
            info,
            n_ctx=config.n_ctx_per_slot * config.n_slots,
            n_seq=config.n_slots,
            n_ubatch=config.n_ubatch,
            swa_full=config.swa_full,
            kv_cache_type=kv_cache_type_for(info, config),
            checkpoints_per_seq=CHECKPOINTS_PER_SLOT,
        )
    return estimate.total_bytes


def _pooling_for(info: ModelInfo, asked: Pooling) -> Pooling:
    """A generative model served for embeddings has no pooling of its own in its GGUF: average its tokens."""
    if asked == "model" and info.model_type != "embedding":
        return "mean"
    return asked


class LoadedModel:
    """Thread-safe facade; generation runs on the model's scheduler thread, embeddings in a worker thread."""

    def __init__(
        self,
        path: Path,
        model_id: str,
        config: EngineConfig,
        *,
        model_type: ModelType = "llm",
        chat_template_override: str | None = None,
        free_bytes: int | None = None,
    ) -> None:
        info = model_info_from_header(read_gguf_header(path))
        need = required_bytes(info, config, model_type)
        free = available_memory_bytes() if free_bytes is None else free_bytes
        if need > free:
            raise InsufficientMemory(
                f"model '{model_id}' needs about {need / 2**20:.0f} MiB but only {free / 2**20:.0f} MiB is free"
            )
        if config.unified_kv and model_type == "llm" and any(info.sliding_window_layers):
            raise ModelUnavailable(
                model_id, "it has a sliding window, which a unified KV cache (--kv-unified) does not serve"
            )
        self.model_id = model_id
        self.model_type: ModelType = model_type
        self.info = info
        self.memory_bytes = need
        self.architecture = info.architecture
        self.chat_template = info.chat_template
        self.chat_template_override = chat_template_override
        self._cache_dir = path.parent
        self._model = LlamaModel(path, mmap=config.mmap)
        self.tokenizer = Tokenizer(self._model)
        self.n_vocab = self._model.n_vocab
        self.bos_token = self.tokenizer.bos_token
        self.eos_token = self.tokenizer.eos_token
        self.embedding_dimension = self._model.n_embd
        self._context: LlamaContext | None = None
        self._users = 0
        self.scheduler: BatchScheduler | None = None
        self.embedder: Embedder | None = None
        threads = config.threads
        self.kv_cache_type = kv_cache_type_for(info, config)
        if self.kv_cache_type != config.kv_cache_type:
            log.warning(
                "model '%s': its attention heads (%d/%d values) are not whole %s blocks; its KV cache stays %s",
                model_id, info.key_length, info.value_length, config.kv_cache_type, self.kv_cache_type,
            )  # fmt: skip
        if model_type == "llm":
            self.n_slots = config.n_slots
            self.n_ctx_per_slot = config.n_ctx_per_slot
            self._context = LlamaContext(
                self._model,
                ContextParams(
                    n_ctx_per_seq=config.n_ctx_per_slot,
                    n_seq=config.n_slots,
                    n_batch=config.n_batch,
                    n_ubatch=config.n_ubatch,
                    n_threads=threads,
                    kv_cache_type=self.kv_cache_type,
                    swa_full=config.swa_full,
                    unified_kv=config.unified_kv,
                ),
            )
            self.scheduler = BatchScheduler(
                self._context,
                self.tokenizer,
                n_batch=config.n_batch,
                queue_size=config.queue_size,
                max_draft=config.draft_tokens,
                huge_pages=config.huge_pages,
            )
        else:
            self.n_slots = config.embedding_seqs
            self.n_ctx_per_slot = config.embedding_ctx
            self.embedder = Embedder(
                self._model,
                self.tokenizer,
                n_ctx_per_seq=config.embedding_ctx,
                n_seq=config.embedding_seqs,
                n_threads=threads,
                pooling=_pooling_for(info, config.embedding_pooling),
            )
        IDLE_COLLAPSE.watch(self)  # the process-wide huge-page pass pauses while this model works

    @property
    def busy(self) -> bool:
        """A request holds the model (see in_use), a generation is running or waiting, or an embedding call is
        in progress: unloading passes it by."""
        scheduler, embedder = self.scheduler, self.embedder  # close() may clear them from another thread
        if self._users or (scheduler is not None and (scheduler.busy_slots or scheduler.queue_depth)):
            return True
        return embedder is not None and embedder.busy

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """Hold the model while a request prepares its work (rendering, tokenizing, compiling a grammar)
        before the scheduler has it. Event-loop thread only, like the model manager that reads it."""
        self._users += 1
        try:
            yield
        finally:
            self._users -= 1

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        return self.tokenizer.tokenize(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, tokens: list[int]) -> str:
        return self.tokenizer.detokenize(tokens)

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.token_text(token_id)

    def encode_bytes(self, data: bytes) -> list[int]:
        return self.tokenizer.encode_bytes(data)

    @property
    def vocabulary(self) -> Vocabulary:
        """The grammar engine's index of this model's tokens (built once, cached beside the model file)."""
        return self.tokenizer.vocabulary(self._cache_dir)

    def _generating_scheduler(self) -> BatchScheduler:
        if self.scheduler is None:
            raise WrongModelType(f"model '{self.model_id}' is an embedding model; it does not generate text")
        return self.scheduler

    def reserve(self, n_sequences: int) -> Reservation:
        """A place in this model's queue for a request about to be prepared (Overloaded if it would be shed)."""
        return self._generating_scheduler().reserve(n_sequences)

    async def generate(
        self, request: GenerationRequest, reservation: Reservation | None = None
    ) -> AsyncGenerator[GenerationEvent, None]:
        scheduler = self._generating_scheduler()
        # Closing this stream closes the scheduler's at once (not when it is collected), which frees the slot.
        async with aclosing(scheduler.generate(request, reservation)) as events:
            async for event in events:
                yield event

    async def embed(
        self,
        texts: list[str],
        *,
        truncation: Truncation = "none",
        output_dimension: int | None = None,
        normalize: bool = True,
    ) -> list[list[float]]:
        if self.embedder is None:
            raise WrongModelType(
                f"model '{self.model_id}' is an llm; register it as an embedding model to embed"
            )
        embedder = self.embedder
        with self.in_use():
            return await anyio.to_thread.run_sync(
                lambda: embedder.embed(
                    texts, truncation=truncation, output_dimension=output_dimension, normalize=normalize
                )
            )

    def close(self) -> None:
        """Free in order: scheduler (stops using the context), contexts, then the model."""
        IDLE_COLLAPSE.forget(self)
        if self.scheduler is not None:
            self.scheduler.close()
            self.scheduler = None
        if self.embedder is not None:
            self.embedder.close()
            self.embedder = None
        if self._context is not None:
            self._context.close()
            self._context = None
        self._model.close()
