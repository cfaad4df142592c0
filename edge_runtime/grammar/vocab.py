"""A model's vocabulary as raw token bytes, indexed once into a byte trie for mask computation."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.durable import write_durably

_FORMAT_VERSION = 2
_MAGIC = f"edge-runtime vocabulary index v{_FORMAT_VERSION}\n".encode()
_HEADER = struct.Struct("<Q32s")
"""After the magic line: the payload's size in bytes and its sha256."""


_INDEX_ARRAYS = ("sorted_ids", "lcp", "node_parent", "node_byte", "level_offsets", "token_node")
"""The TrieIndex fields a cache stores (its derived child_offsets is recomputed on load)."""


class CorruptVocabularyCache(ValueError):
    """A cache file that is truncated, corrupted or of another format: rebuild it from the model."""


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
    costs under a second for 262k tokens, and `save` / `load` cache it in one file whose size and sha256 are
    checked on every load."""

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
        """Replace `path` durably (unique temp, fsync, rename): readers see the old cache or the new one."""
        write_durably(Path(path), self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a vocabulary written by `save`; raises CorruptVocabularyCache (a ValueError) on a truncated or
        corrupted file, or one of another format version."""
        return cls.from_bytes(Path(path).read_bytes(), source=str(path))

    def to_bytes(self) -> bytes:
        """The cache format: a magic line, the payload's size and sha256, then the arrays as an .npz."""
        lengths = np.array([len(token) for token in self.token_bytes], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        index = self.index
        buffer = io.BytesIO()
        np.savez(
            buffer,
            data=np.frombuffer(b"".join(self.token_bytes), dtype=np.uint8),
            offsets=offsets,
            eog_ids=np.array(sorted(self.eog_ids), dtype=np.int64),
            control_ids=np.array(sorted(self.control_ids), dtype=np.int64),
            **{name: getattr(index, name) for name in _INDEX_ARRAYS},
        )
        payload = buffer.getvalue()
        return _MAGIC + _HEADER.pack(len(payload), hashlib.sha256(payload).digest()) + payload

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "vocabulary cache") -> Vocabulary:
        if not data.startswith(_MAGIC):
            raise CorruptVocabularyCache(
                f"{source} is not a vocabulary index of format version {_FORMAT_VERSION}"
            )
        start = len(_MAGIC) + _HEADER.size
        if len(data) < start:
            raise CorruptVocabularyCache(f"{source} is truncated ({len(data)} bytes)")
        size, digest = _HEADER.unpack_from(data, len(_MAGIC))
        payload = data[start:]
        if len(payload) != size:
            raise CorruptVocabularyCache(
                f"{source} holds {len(payload)} bytes of index where its header says {size} (truncated?)"
            )
        if hashlib.sha256(payload).digest() != digest:
            raise CorruptVocabularyCache(f"{source} does not match its sha256 (corrupted)")
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
                raw = arrays["data"].tobytes()
                offsets = arrays["offsets"].tolist()
                tokens = [raw[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
                index = TrieIndex(**{name: arrays[name] for name in _INDEX_ARRAYS})
                return cls(tokens, arrays["eog_ids"].tolist(), arrays["control_ids"].tolist(), _index=index)
        except (KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise CorruptVocabularyCache(
                f"{source} has a checksum but no readable index ({error})"
            ) from error


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
