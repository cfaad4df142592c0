"""Store test helpers: a byte-level GGUF builder (for files no converter would write) and a llama.cpp probe."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_runtime.store.gguf_reader import GGUFValueType

_SCALAR_CODES = {
    GGUFValueType.UINT8: "B",
    GGUFValueType.INT8: "b",
    GGUFValueType.UINT16: "H",
    GGUFValueType.INT16: "h",
    GGUFValueType.UINT32: "I",
    GGUFValueType.INT32: "i",
    GGUFValueType.FLOAT32: "f",
    GGUFValueType.BOOL: "B",  # not "?", so tests can write bytes other than 0 and 1
    GGUFValueType.UINT64: "Q",
    GGUFValueType.INT64: "q",
    GGUFValueType.FLOAT64: "d",
}


@dataclass(frozen=True)
class Value:
    """A typed metadata value; an ARRAY holds `element_type` and a list of plain values or nested `Value`s."""

    type: GGUFValueType
    value: Any
    element_type: GGUFValueType | None = None


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    data: bytes


def _string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _encode(value: Value) -> bytes:
    if value.type is GGUFValueType.STRING:
        return _string(value.value)
    if value.type is GGUFValueType.ARRAY:
        assert value.element_type is not None
        out = struct.pack("<IQ", value.element_type, len(value.value))
        for item in value.value:
            out += _encode(item if isinstance(item, Value) else Value(value.element_type, item))
        return out
    return struct.pack("<" + _SCALAR_CODES[value.type], value.value)


def gguf_bytes(
    metadata: Sequence[tuple[str, Value]],
    tensors: Sequence[Tensor] = (),
    *,
    version: int = 3,
    alignment: int = 32,
) -> bytes:
    """A GGUF file, written byte by byte so tests control every field."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, value in metadata:
        out += _string(key) + struct.pack("<I", value.type) + _encode(value)
    offset = 0
    placed: list[tuple[int, bytes]] = []
    for tensor in tensors:
        out += _string(tensor.name) + struct.pack("<I", len(tensor.shape))
        out += b"".join(struct.pack("<Q", d) for d in tensor.shape)
        out += struct.pack("<IQ", tensor.ggml_type, offset)
        placed.append((offset, tensor.data))
        offset += -(-len(tensor.data) // alignment) * alignment
    out += b"\0" * (-len(out) % alignment)
    for start, data in placed:
        out += data + b"\0" * (-(start + len(data)) % alignment)
    return out


def llm_metadata(architecture: str = "llama", **extra: Value) -> list[tuple[str, Value]]:
    """The least metadata ModelInfo needs, plus `extra` keys (dots written as __)."""
    u32 = GGUFValueType.UINT32
    items = [
        ("general.architecture", Value(GGUFValueType.STRING, architecture)),
        (f"{architecture}.context_length", Value(u32, 256)),
        (f"{architecture}.embedding_length", Value(u32, 32)),
        (f"{architecture}.block_count", Value(u32, 2)),
        (f"{architecture}.attention.head_count", Value(u32, 4)),
        ("tokenizer.ggml.tokens", Value(GGUFValueType.ARRAY, ["a", "b", "c"], GGUFValueType.STRING)),
    ]
    items += [(key.replace("__", "."), value) for key, value in extra.items()]
    return items


LLAMA_PROBE = """
import json, sys, ctypes
import llama_cpp as L
path, n_ctx, n_seq, swa_full = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
L.llama_backend_init()
model = L.llama_model_load_from_file(path.encode(), L.llama_model_default_params())
vocab = L.llama_model_get_vocab(model)
def meta(key):
    buf = ctypes.create_string_buffer(4096)
    n = L.llama_model_meta_val_str(model, key.encode(), buf, len(buf))
    return buf.value.decode() if n >= 0 else None
keys = []
for i in range(L.llama_model_meta_count(model)):
    buf = ctypes.create_string_buffer(512)
    L.llama_model_meta_key_by_index(model, i, buf, len(buf))
    keys.append(buf.value.decode())
facts = {
    "n_params": L.llama_model_n_params(model), "n_ctx_train": L.llama_model_n_ctx_train(model),
    "n_vocab": L.llama_vocab_n_tokens(vocab), "n_embd": L.llama_model_n_embd(model),
    "n_layer": L.llama_model_n_layer(model), "n_head": L.llama_model_n_head(model),
    "n_head_kv": L.llama_model_n_head_kv(model), "n_swa": L.llama_model_n_swa(model),
    "size": L.llama_model_size(model), "bos": L.llama_vocab_bos(vocab), "eos": L.llama_vocab_eos(vocab),
    "meta": {key: meta(key) for key in keys},
    "token_text": {str(i): L.llama_vocab_get_text(vocab, i).decode("utf-8", "surrogateescape")
                   for i in range(0, L.llama_vocab_n_tokens(vocab), 997)},
}
if n_ctx:
    params = L.llama_context_default_params()
    params.n_ctx, params.n_seq_max, params.n_batch, params.n_ubatch = n_ctx, n_seq, 128, 128
    params.swa_full = swa_full
    ctx = L.llama_init_from_model(model, params)
    L.llama_free(ctx)
sys.stdout.write(json.dumps(facts))
"""


@dataclass(frozen=True)
class LlamaView:
    """What llama.cpp itself reports about a model file (and its log, for buffer sizes)."""

    facts: dict[str, Any]
    log: str


def llama_cpp_view(path: Path, *, n_ctx: int = 0, n_seq: int = 1, swa_full: bool = False) -> LlamaView:
    """Load `path` with llama.cpp in a child process (its log goes to the child's stderr, which we keep)."""
    result = subprocess.run(
        [sys.executable, "-c", LLAMA_PROBE, str(path), str(n_ctx), str(n_seq), "1" if swa_full else "0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return LlamaView(facts=json.loads(result.stdout), log=result.stderr)
