"""Sentence embeddings: many inputs in one decode, pooled by llama.cpp, truncated and normalized here."""

from __future__ import annotations

import threading
from typing import Literal

import llama_cpp as llama
import numpy as np

from edge_runtime.engine.llama_handles import Batch, ContextParams, LlamaContext, LlamaModel
from edge_runtime.engine.tokenizer import Tokenizer
from edge_runtime.errors import BadRequest, ContextLengthExceeded

Truncation = Literal["none", "start", "end"]
Pooling = Literal["model", "mean", "cls", "last"]

_POOLING_TYPES = {
    "mean": llama.LLAMA_POOLING_TYPE_MEAN,
    "cls": llama.LLAMA_POOLING_TYPE_CLS,
    "last": llama.LLAMA_POOLING_TYPE_LAST,
}


def _pooling_type(model: LlamaModel, pooling: Pooling) -> int:
    """ "model" means the GGUF's own pooling; a generative model declares none, and then it is mean pooling."""
    if pooling != "model":
        return _POOLING_TYPES[pooling]
    architecture = model.meta("general.architecture")
    declared = model.meta(f"{architecture}.pooling_type") if architecture else None
    if declared is not None and declared.strip().isdigit() and int(declared) > llama.LLAMA_POOLING_TYPE_NONE:
        return int(declared)
    return llama.LLAMA_POOLING_TYPE_MEAN


class Embedder:
    """Owns an embeddings context. `n_ctx_per_seq` bounds one input (and one decode holds every token of an
    input, as pooling needs); calls are serialized by a lock."""

    def __init__(
        self,
        model: LlamaModel,
        tokenizer: Tokenizer,
        *,
        n_ctx_per_seq: int,
        n_seq: int,
        n_threads: int,
        pooling: Pooling,
    ) -> None:
        if pooling != "model" and pooling not in _POOLING_TYPES:
            raise BadRequest(f"unknown pooling '{pooling}'; use model or one of {sorted(_POOLING_TYPES)}")
        self.tokenizer = tokenizer
        self.n_embd = model.n_embd
        self.n_ctx = n_ctx_per_seq
        self.n_seq = n_seq
        params = ContextParams(
            n_ctx_per_seq=n_ctx_per_seq,
            n_seq=n_seq,
            n_batch=n_ctx_per_seq,
            n_ubatch=n_ctx_per_seq,
            n_threads=n_threads,
            embeddings=True,
            pooling_type=_pooling_type(model, pooling),
            unified_kv=True,
        )
        self.context = LlamaContext(model, params)
        self._batch = Batch(n_ctx_per_seq)
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def embed(
        self,
        texts: list[str],
        *,
        truncation: Truncation = "none",
        output_dimension: int | None = None,
        normalize: bool = True,
    ) -> list[list[float]]:
        if truncation not in ("none", "start", "end"):
            raise BadRequest(f"text_truncation must be none, start or end, got '{truncation}'")
        if output_dimension is not None and not 1 <= output_dimension <= self.n_embd:
            raise BadRequest(
                f"output_dimension {output_dimension} is out of range: the model's embeddings have "
                f"{self.n_embd} dimensions"
            )
        inputs = [self._truncated(self.tokenizer.tokenize(text), truncation) for text in texts]
        vectors: list[np.ndarray] = []
        with self._lock:
            for group in self._groups(inputs):
                vectors.extend(self._decode_group(group))
        out: list[list[float]] = []
        for vector in vectors:
            if output_dimension is not None:
                vector = vector[:output_dimension]
            if normalize or output_dimension is not None:
                norm = float(np.linalg.norm(vector))
                vector = vector / norm if norm > 0 else vector
            out.append([float(x) for x in vector])
        return out

    def _truncated(self, tokens: list[int], truncation: Truncation) -> list[int]:
        if not tokens:
            raise BadRequest("an input to embed is empty")
        if len(tokens) <= self.n_ctx:
            return tokens
        if truncation == "none":
            raise ContextLengthExceeded(len(tokens), self.n_ctx)
        return tokens[-self.n_ctx :] if truncation == "start" else tokens[: self.n_ctx]

    def _groups(self, inputs: list[list[int]]) -> list[list[list[int]]]:
        """Consecutive inputs packed into decodes of at most n_seq sequences and n_ctx tokens."""
        groups: list[list[list[int]]] = []
        current: list[list[int]] = []
        size = 0
        for tokens in inputs:
            if current and (len(current) == self.n_seq or size + len(tokens) > self.n_ctx):
                groups.append(current)
                current, size = [], 0
            current.append(tokens)
            size += len(tokens)
        if current:
            groups.append(current)
        return groups

    def _decode_group(self, group: list[list[int]]) -> list[np.ndarray]:
        self.context.clear()
        batch = self._batch
        batch.clear()
        for seq_id, tokens in enumerate(group):
            for position, token in enumerate(tokens):
                batch.add(token, position, seq_id, True)
        self.context.decode(batch)
        return [
            self.context.sequence_embedding(seq_id, self.n_embd).astype(np.float64)
            for seq_id in range(len(group))
        ]

    def close(self) -> None:
        self._batch.close()
        self.context.close()
