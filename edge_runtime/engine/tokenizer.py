"""Text <-> tokens for one model, with every token's raw bytes read once (the detokenizer and the grammar
engine's vocabulary both start from them)."""

from __future__ import annotations

import codecs
import ctypes
import hashlib
import threading
from pathlib import Path

import llama_cpp as llama

from edge_runtime.engine.llama_handles import LlamaModel
from edge_runtime.engine.vocab_cache import load_or_build
from edge_runtime.grammar import Vocabulary


class Tokenizer:
    def __init__(self, model: LlamaModel) -> None:
        self._model = model
        self._vocab = model.vocab
        self.n_vocab = model.n_vocab
        self.token_bytes: list[bytes] = [self._piece(token, special=False) for token in range(self.n_vocab)]
        """Raw bytes of each token as text; empty for control tokens, which are never rendered."""
        self.eog_ids = frozenset(t for t in range(self.n_vocab) if llama.llama_vocab_is_eog(self._vocab, t))
        self.control_ids = frozenset(
            t for t in range(self.n_vocab) if llama.llama_vocab_is_control(self._vocab, t)
        )
        self.bos_id = int(llama.llama_vocab_bos(self._vocab))
        self.eos_id = int(llama.llama_vocab_eos(self._vocab))
        self.bos_token = self.special_text(self.bos_id)
        self.eos_token = self.special_text(self.eos_id)
        self._vocabulary: Vocabulary | None = None
        self._vocabulary_lock = threading.Lock()

    def _piece(self, token: int, *, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = llama.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        return buf.raw[: max(n, 0)]

    def special_text(self, token: int) -> str:
        """How a token is written in a prompt (control tokens included), e.g. `<bos>`; empty for no token."""
        if not 0 <= token < self.n_vocab:
            return ""
        return self._piece(token, special=True).decode("utf-8", errors="replace")

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        while True:
            out = (llama.llama_token * capacity)()
            n = llama.llama_tokenize(self._vocab, data, len(data), out, capacity, add_special, parse_special)
            if n >= 0:
                return list(out[:n])
            capacity = -n

    def encode_bytes(self, data: bytes) -> list[int]:
        """The model's canonical tokens of a text fragment (no special tokens), for jump-forward."""
        return self.tokenize(data.decode("utf-8", errors="strict"), add_special=False, parse_special=False)

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self.token_bytes[t] for t in tokens if 0 <= t < self.n_vocab).decode(
            "utf-8", errors="replace"
        )

    def token_text(self, token: int) -> str:
        return self.token_bytes[token].decode("utf-8", errors="replace") if 0 <= token < self.n_vocab else ""

    def vocabulary(self, cache_dir: Path | None) -> Vocabulary:
        """The grammar engine's index of this vocabulary, built once (concurrent callers wait for the one
        build) and cached on disk beside the model."""
        if self._vocabulary is not None:
            return self._vocabulary
        with self._vocabulary_lock:
            if self._vocabulary is None:
                if cache_dir is None:
                    self._vocabulary = self._build_vocabulary()
                else:
                    cache_file = cache_dir / f".vocab-{self._vocabulary_digest()[:16]}.npz"
                    self._vocabulary = load_or_build(cache_file, self._build_vocabulary)
            return self._vocabulary

    def _build_vocabulary(self) -> Vocabulary:
        return Vocabulary(self.token_bytes, self.eog_ids, self.control_ids)

    def _vocabulary_digest(self) -> str:
        """Names the cache file: any change to the tokens, or to which are control or end-of-generation, is a
        new file."""
        digest = hashlib.sha256()
        for data in self.token_bytes:
            digest.update(len(data).to_bytes(2, "little") + data)
        digest.update(repr((sorted(self.eog_ids), sorted(self.control_ids))).encode())
        return digest.hexdigest()


class IncrementalDecoder:
    """Bytes of tokens in, text out, never cutting a UTF-8 character: an incomplete sequence waits for the
    next token's bytes."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._bytes = tokenizer.token_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> str:
        return self._decoder.decode(self._bytes[token])

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)
