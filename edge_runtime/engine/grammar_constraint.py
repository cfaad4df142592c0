"""The engine's Constraint protocol on top of a grammar matcher, with jump-forward through forced bytes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge_runtime.engine.types import accepted_prefix
from edge_runtime.grammar.matcher import GrammarMatcher


class GrammarConstraint:
    """Constrains one sequence. `encode_bytes` turns forced text bytes into the model's tokens (without
    special tokens); those tokens are offered for jump-forward only if the grammar accepts every one of them."""

    def __init__(self, matcher: GrammarMatcher, encode_bytes: Callable[[bytes], list[int]]) -> None:
        self.matcher = matcher
        self._encode_bytes = encode_bytes
        self._forced_cache: tuple[int, list[int]] | None = None

    def accept_token(self, token_id: int) -> bool:
        return self.matcher.accept_token(token_id)

    def fill_mask(self, mask: np.ndarray) -> None:
        """Allowed tokens; end-of-generation ids when the grammar is complete, and only those once nothing
        else can follow."""
        self.matcher.fill_mask(mask)

    def forced_tokens(self) -> list[int]:
        state = self.matcher.state
        if self._forced_cache is not None and self._forced_cache[0] == state:
            return list(self._forced_cache[1])
        tokens = self._tokens_for_forced_bytes()
        self._forced_cache = (state, tokens)
        return list(tokens)

    def _tokens_for_forced_bytes(self) -> list[int]:
        forced = _whole_characters(self.matcher.forced_bytes())
        if not forced:
            return []
        try:
            tokens = self._encode_bytes(forced)
        except UnicodeDecodeError:
            return []  # not text the tokenizer can take: sample these bytes instead of jumping over them
        if accepted_prefix(self.matcher.fork().accept_token, tokens) == len(tokens):
            return tokens
        return []

    def allows(self, tokens: list[int]) -> int:
        return accepted_prefix(self.matcher.fork().accept_token, tokens)

    def is_complete(self) -> bool:
        return self.matcher.is_complete()

    def is_finished(self) -> bool:
        """Complete, and nothing but end-of-generation may follow (cheaper than inspecting a mask)."""
        return self.matcher.is_finished()


def _whole_characters(data: bytes) -> bytes:
    """`data` without a trailing incomplete UTF-8 sequence (a forced lead byte whose continuation is a
    choice), so jump-forward never tokenizes half a character; nothing when it starts inside a character
    (a byte token took the lead byte: the rest of that character is sampled, not tokenized as text)."""
    if data and data[0] & 0xC0 == 0x80:
        return b""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:
            expected = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            return data if expected <= back else data[:-back]
    return data
