"""A model's vocabulary as raw token bytes, indexed once into a byte trie for mask computation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class TrieIndex:
    """Text tokens (not control, not end-of-generation, not empty) sorted by bytes, as flat arrays.

    - `sorted_ids[k]`, `lcp[k]`: the k-th token in byte order and the length of the prefix it shares with the
      (k-1)-th: enough for a depth-first walk that reuses the parse state of the shared prefix (the C port).
    - the same trie by levels: nodes are numbered by depth (`level_offsets[d]` is the first node of depth d,
      node 0 is the empty prefix), `node_parent` / `node_byte` give each node's parent and last byte, and
      `token_node[id]` is the node spelling token `id` (-1 for tokens that never match text).
    """

    sorted_ids: np.ndarray
    lcp: np.ndarray
    node_parent: np.ndarray
    node_byte: np.ndarray
    level_offsets: np.ndarray
    token_node: np.ndarray
    child_offsets: np.ndarray = field(init=False, repr=False)
    """Derived: the children of node n are nodes child_offsets[n] .. child_offsets[n + 1] - 1 (levels are
    stored in order and each level's nodes are grouped by parent)."""

    def __post_init__(self) -> None:
        nodes = len(self.node_parent)
        offsets = np.searchsorted(self.node_parent[1:], np.arange(nodes + 1), side="left") + 1
        object.__setattr__(self, "child_offsets", offsets.astype(np.int64))

    @property
    def n_levels(self) -> int:
        return len(self.level_offsets) - 1


class Vocabulary:
    """Every token's raw bytes (the engine converts byte-level BPE / SentencePiece forms first), which ids end
    generation, which are control tokens (they never match grammar text). Build once per model; the index
    costs under a second for 262k tokens, and `save` / `load` cache it in one .npz file."""

    def __init__(
        self,
        token_bytes: Sequence[bytes],
        eog_ids: Iterable[int],
        control_ids: Iterable[int],
        *,
        _index: TrieIndex | None = None,
    ) -> None:
        self.token_bytes: tuple[bytes, ...] = tuple(bytes(token) for token in token_bytes)
        self.size = len(self.token_bytes)
        self.eog_ids = frozenset(int(token) for token in eog_ids)
        self.control_ids = frozenset(int(token) for token in control_ids)
        for name, ids in (("eog_ids", self.eog_ids), ("control_ids", self.control_ids)):
            outside = sorted(token for token in ids if not 0 <= token < self.size)
            if outside:
                raise ValueError(f"{name} {outside[:5]} are outside the vocabulary of {self.size} tokens")
        self.eog_array = np.array(sorted(self.eog_ids), dtype=np.int64)
        self.index = _index if _index is not None else _build_index(self.token_bytes, self.text_token_ids())

    def __len__(self) -> int:
        return self.size

    def text_token_ids(self) -> list[int]:
        """Tokens that can match grammar text: neither control nor end-of-generation, and not empty."""
        excluded = self.eog_ids | self.control_ids
        return [token for token, data in enumerate(self.token_bytes) if data and token not in excluded]

    def save(self, path: str | Path) -> None:
        lengths = np.array([len(token) for token in self.token_bytes], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        index = self.index
        with open(path, "wb") as file:
            np.savez(
                file,
                version=np.array([_FORMAT_VERSION]),
                data=np.frombuffer(b"".join(self.token_bytes), dtype=np.uint8),
                offsets=offsets,
                eog_ids=np.array(sorted(self.eog_ids), dtype=np.int64),
                control_ids=np.array(sorted(self.control_ids), dtype=np.int64),
                sorted_ids=index.sorted_ids,
                lcp=index.lcp,
                node_parent=index.node_parent,
                node_byte=index.node_byte,
                level_offsets=index.level_offsets,
                token_node=index.token_node,
            )

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a vocabulary written by `save`; raises ValueError on a file of another format version."""
        with np.load(path, allow_pickle=False) as arrays:
            if "version" not in arrays or int(arrays["version"][0]) != _FORMAT_VERSION:
                raise ValueError(f"{path} is not a vocabulary index of format version {_FORMAT_VERSION}")
            raw = arrays["data"].tobytes()
            offsets = arrays["offsets"].tolist()
            tokens = [raw[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
            index = TrieIndex(
                sorted_ids=arrays["sorted_ids"],
                lcp=arrays["lcp"],
                node_parent=arrays["node_parent"],
                node_byte=arrays["node_byte"],
                level_offsets=arrays["level_offsets"],
                token_node=arrays["token_node"],
            )
            return cls(tokens, arrays["eog_ids"].tolist(), arrays["control_ids"].tolist(), _index=index)


def _build_index(token_bytes: tuple[bytes, ...], text_ids: list[int]) -> TrieIndex:
    order = sorted(text_ids, key=token_bytes.__getitem__)
    order_ids = np.array(order, dtype=np.int64)
    count = len(order)
    lengths = np.array([len(token_bytes[token]) for token in order], dtype=np.int64)
    width = int(lengths.max()) if count else 0
    matrix = np.zeros((count, width), dtype=np.uint8)
    if count:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        rows = np.repeat(np.arange(count), lengths)
        columns = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
        matrix[rows, columns] = np.frombuffer(b"".join(token_bytes[token] for token in order), dtype=np.uint8)
    lcp = np.zeros(count, dtype=np.int32)
    if count > 1:
        shared = np.minimum(lengths[1:], lengths[:-1])
        differs = (matrix[1:] != matrix[:-1]) | (np.arange(width)[None, :] >= shared[:, None])
        lcp[1:] = np.where(differs.any(axis=1), differs.argmax(axis=1), shared)

    token_node = np.full(len(token_bytes), -1, dtype=np.int32)
    parents: list[np.ndarray] = [np.array([-1], dtype=np.int32)]
    last_bytes: list[np.ndarray] = [np.array([0], dtype=np.uint8)]
    level_offsets = [0, 1]
    node_above = np.zeros(count, dtype=np.int64)
    for depth in range(1, width + 1):
        present = lengths >= depth
        new = present & (lcp < depth)
        node = level_offsets[-1] + np.cumsum(new) - 1
        parents.append(node_above[new].astype(np.int32))
        last_bytes.append(matrix[new, depth - 1])
        ends = lengths == depth
        token_node[order_ids[ends]] = node[ends]
        level_offsets.append(level_offsets[-1] + int(new.sum()))
        node_above = np.where(present, node, -1)
    return TrieIndex(
        sorted_ids=order_ids.astype(np.int32),
        lcp=lcp,
        node_parent=np.concatenate(parents).astype(np.int32),
        node_byte=np.concatenate(last_bytes).astype(np.uint8),
        level_offsets=np.array(level_offsets, dtype=np.int64),
        token_node=token_node,
    )
