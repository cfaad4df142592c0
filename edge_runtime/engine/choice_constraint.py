"""A constraint whose output is exactly one of N strings (OpenAI's `guided_choice`).

Any token whose bytes keep the text a prefix of some choice is allowed, so it works whatever the model samples;
a trie over the choices' canonical tokenizations gives the forced tokens (jump-forward) while the model follows
them. End of generation is allowed only once a whole choice is written.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge_runtime.engine.types import accepted_prefix
from edge_runtime.errors import BadRequest
from edge_runtime.grammar import Vocabulary


class ChoiceModel(Protocol):
    """What a choice constraint needs from a model (the engine's LoadedModel has both)."""

    @property
    def vocabulary(self) -> Vocabulary: ...

    def encode_bytes(self, data: bytes) -> list[int]: ...


@dataclass
class _TrieNode:
    children: dict[int, _TrieNode] = field(default_factory=dict)
    terminal: bool = False
    choices: int = 0
    """How many choices' canonical tokenizations pass through here."""


@dataclass(frozen=True)
class _TokensByBytes:
    """Text token ids grouped by their exact bytes, and the longest token's length (bounds prefix lookups)."""

    ids: dict[bytes, np.ndarray]
    longest: int


_index_cache: weakref.WeakKeyDictionary[Vocabulary, _TokensByBytes] = weakref.WeakKeyDictionary()


def _tokens_by_bytes(vocabulary: Vocabulary) -> _TokensByBytes:
    """Built once per vocabulary (shared by every constraint on that model)."""
    cached = _index_cache.get(vocabulary)
    if cached is not None:
        return cached
    grouped: dict[bytes, list[int]] = {}
    for token in vocabulary.text_token_ids():
        grouped.setdefault(vocabulary.token_bytes[token], []).append(token)
    index = _TokensByBytes(
        {data: np.array(ids, dtype=np.int64) for data, ids in grouped.items()},
        max((len(data) for data in grouped), default=0),
    )
    _index_cache[vocabulary] = index
    return index


class ChoiceConstraint:
    """Constrains one sequence to one of `choices`. `model` gives the vocabulary and the canonical tokenizer;
    `encode` (bytes -> token ids) replaces the model's tokenizer when given."""

    def __init__(
        self,
        choices: Sequence[str],
        model: ChoiceModel,
        *,
        encode: Callable[[bytes], list[int]] | None = None,
        eog_ids: Iterable[int] | None = None,
    ) -> None:
        if not choices:
            raise BadRequest("guided_choice needs at least one choice")
        encoded = list(dict.fromkeys(choice.encode("utf-8") for choice in choices))
        vocabulary = model.vocabulary
        self._token_bytes = vocabulary.token_bytes
        self._index = _tokens_by_bytes(vocabulary)
        self._eog = np.array(sorted(vocabulary.eog_ids if eog_ids is None else eog_ids), dtype=np.int64)
        self._eog_set = frozenset(int(t) for t in self._eog)
        self._encode = encode or model.encode_bytes
        self._remaining = encoded
        """Choices that start with the text written so far."""
        self._written = b""
        self._root = _TrieNode()
        for data in encoded:
            self._insert(data)
        self._node: _TrieNode | None = self._root
        """Where the canonical trie is while the model follows it; None once it took another spelling."""

    def _insert(self, data: bytes) -> None:
        tokens = self._encode(data) if data else []
        if b"".join(self._token_bytes[t] for t in tokens) != data:
            return  # a tokenizer that does not spell the choice back gives no forced path; prefixes still work
        node = self._root
        node.choices += 1
        for token in tokens:
            node = node.children.setdefault(token, _TrieNode())
            node.choices += 1
        node.terminal = True

    @property
    def text(self) -> bytes:
        """The bytes written so far."""
        return self._written

    def is_complete(self) -> bool:
        return self._written in self._remaining

    def is_finished(self) -> bool:
        """A whole choice is written and no other choice continues it."""
        return self._remaining == [self._written]

    def accept_token(self, token_id: int) -> bool:
        if token_id in self._eog_set:
            return self.is_complete()
        if not 0 <= token_id < len(self._token_bytes):
            return False
        data = self._token_bytes[token_id]
        if not data or self._index.ids.get(data) is None:
            return False
        written = self._written + data
        remaining = [choice for choice in self._remaining if choice.startswith(written)]
        if not remaining:
            return False
        self._written = written
        self._remaining = remaining
        self._node = self._node.children.get(token_id) if self._node is not None else None
        return True

    def allows(self, tokens: list[int]) -> int:
        # accept_token replaces the fields it changes, never mutates them: a shallow copy is a probe
        return accepted_prefix(copy.copy(self).accept_token, tokens)

    def fill_mask(self, mask: np.ndarray) -> None:
        mask[:] = False
        start = len(self._written)
        seen: set[bytes] = set()
        for choice in self._remaining:
            rest = choice[start:]
            for length in range(1, min(len(rest), self._index.longest) + 1):
                piece = rest[:length]
                if piece in seen:
                    continue
                seen.add(piece)
                ids = self._index.ids.get(piece)
                if ids is not None:
                    mask[ids] = True
        if self.is_complete():
            mask[self._eog] = True

    def forced_tokens(self) -> list[int]:
        """Along the canonical trie while it has one way on and holds every remaining choice; otherwise the rest
        of the only remaining choice."""
        if self.is_complete():
            return []
        if self._node is not None and self._node.choices == len(self._remaining):
            forced: list[int] = []
            node = self._node
            while len(node.children) == 1 and not node.terminal:
                token, node = next(iter(node.children.items()))
                forced.append(token)
            return forced
        if len(self._remaining) != 1:
            return []
        rest = self._remaining[0][len(self._written) :]
        try:
            tokens = self._encode(rest)
        except UnicodeDecodeError:
            return []  # the written text ends inside a character: let the model finish it
        if b"".join(self._token_bytes[t] for t in tokens) != rest:
            return []
        return tokens
