"""The generated tiny model: same bytes every run, and llama.cpp loads it, tokenizes with it and generates."""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

TINY_MODEL_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_tiny_model.py"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_runs_write_identical_bytes(tmp_path: Path, tiny_model_path: Path) -> None:
    first, second = tmp_path / "a.gguf", tmp_path / "b.gguf"
    for out in (first, second):
        subprocess.run([sys.executable, str(TINY_MODEL_SCRIPT), str(out)], check=True)
    assert first.read_bytes() == second.read_bytes()
    assert _sha256(first) == _sha256(tiny_model_path)


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path: Path) -> Iterator[llama_cpp.llama_model_p]:
    llama_cpp.llama_backend_init()
    model = llama_cpp.llama_model_load_from_file(
        str(tiny_model_path).encode(), llama_cpp.llama_model_default_params()
    )
    assert model, "llama.cpp refused the tiny model"
    yield model
    llama_cpp.llama_model_free(model)


def _tokenize(vocab: llama_cpp.llama_vocab_p, text: str) -> list[int]:
    data = text.encode()
    buffer = (llama_cpp.llama_token * 256)()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), buffer, len(buffer), True, True)
    assert n > 0
    return list(buffer[:n])


def _piece(vocab: llama_cpp.llama_vocab_p, token: int) -> bytes:
    buffer = ctypes.create_string_buffer(64)
    n = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, True)
    return buffer.raw[:n]


def test_vocabulary_has_learned_merges_and_special_tokens(tiny_model: llama_cpp.llama_model_p) -> None:
    vocab = llama_cpp.llama_model_get_vocab(tiny_model)
    text = '{"name": "Alice", the capital of France'
    tokens = _tokenize(vocab, text)
    assert tokens[0] == llama_cpp.llama_vocab_bos(vocab)
    assert b"".join(_piece(vocab, t) for t in tokens[1:]) == text.encode()
    pieces = {_piece(vocab, t) for t in tokens}
    assert {b'{"', b'":', b" the"} <= pieces
    assert len(tokens) < len(text.encode()) // 2

    chat = _tokenize(vocab, "<|im_start|>user\nhi<|im_end|>")
    im_start, im_end = chat[1], chat[-1]
    assert _piece(vocab, im_start) == b"<|im_start|>"
    assert llama_cpp.llama_vocab_is_eog(vocab, im_end)
    assert llama_cpp.llama_vocab_is_eog(vocab, llama_cpp.llama_vocab_eos(vocab))
    assert not llama_cpp.llama_vocab_is_eog(vocab, im_start)


def test_llama_cpp_generates_deterministic_tokens(tiny_model: llama_cpp.llama_model_p) -> None:
    vocab = llama_cpp.llama_model_get_vocab(tiny_model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)

    def greedy(n_tokens: int) -> list[int]:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = 128
        params.n_batch = 64
        context = llama_cpp.llama_init_from_model(tiny_model, params)
        assert context
        try:
            prompt = _tokenize(vocab, "The quick brown fox")
            batch_tokens = (llama_cpp.llama_token * len(prompt))(*prompt)
            assert (
                llama_cpp.llama_decode(context, llama_cpp.llama_batch_get_one(batch_tokens, len(prompt))) == 0
            )
            generated: list[int] = []
            for _ in range(n_tokens):
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(context, -1), shape=(n_vocab,))
                assert np.isfinite(logits).all()
                token = int(logits.argmax())
                generated.append(token)
                one = (llama_cpp.llama_token * 1)(token)
                assert llama_cpp.llama_decode(context, llama_cpp.llama_batch_get_one(one, 1)) == 0
            return generated
        finally:
            llama_cpp.llama_free(context)

    first = greedy(12)
    assert first == greedy(12)
    assert len(set(first)) > 1
