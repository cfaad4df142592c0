"""The vocabulary index: sorted order, shared prefixes, the level-ordered trie, and its .npz cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.grammar import Vocabulary
from edge_runtime.grammar.vocab import CorruptVocabularyCache


def _spelled(vocab: Vocabulary, node: int) -> bytes:
    index = vocab.index
    out = bytearray()
    while node > 0:
        out.append(int(index.node_byte[node]))
        node = int(index.node_parent[node])
    return bytes(reversed(out))


def test_index_describes_the_tokens(tiny_vocabulary: Vocabulary) -> None:
    index = tiny_vocabulary.index
    texts = [tiny_vocabulary.token_bytes[token] for token in index.sorted_ids.tolist()]
    assert texts == sorted(texts)
    assert sorted(index.sorted_ids.tolist()) == tiny_vocabulary.text_token_ids()
    for position in range(1, len(texts)):
        previous, current = texts[position - 1], texts[position]
        shared = 0
        while shared < min(len(previous), len(current)) and previous[shared] == current[shared]:
            shared += 1
        assert index.lcp[position] == shared
    for token, node in enumerate(index.token_node.tolist()):
        if token in tiny_vocabulary.text_token_ids():
            assert _spelled(tiny_vocabulary, node) == tiny_vocabulary.token_bytes[token]
        else:
            assert node == -1
    depths = np.repeat(np.arange(index.n_levels), np.diff(index.level_offsets))
    assert (depths[index.node_parent[1:]] == depths[1:] - 1).all()
    spellings = [_spelled(tiny_vocabulary, node) for node in range(len(index.node_parent))]
    assert len(set(spellings)) == len(spellings)


def test_save_and_load_round_trip(tiny_vocabulary: Vocabulary, tmp_path: Path) -> None:
    path = tmp_path / "vocab.npz"
    tiny_vocabulary.save(path)
    loaded = Vocabulary.load(path)
    assert loaded.token_bytes == tiny_vocabulary.token_bytes
    assert loaded.eog_ids == tiny_vocabulary.eog_ids and loaded.control_ids == tiny_vocabulary.control_ids
    for name in ("sorted_ids", "lcp", "node_parent", "node_byte", "level_offsets", "token_node"):
        np.testing.assert_array_equal(getattr(loaded.index, name), getattr(tiny_vocabulary.index, name))


def test_load_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, something=np.zeros(3))
    with pytest.raises(ValueError, match="format version"):
        Vocabulary.load(path)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: data[:20], "format version"),
        (lambda data: data[:40], "truncated"),
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "sha256"),
        (lambda data: data + b"x", "header says"),
    ],
    ids=["half", "inside-the-magic", "inside-the-header", "flipped-bit", "appended"],
)
def test_load_refuses_damaged_caches(
    tiny_vocabulary: Vocabulary, tmp_path: Path, damage: Callable[[bytes], bytes], problem: str
) -> None:
    path = tmp_path / "vocab.npz"
    tiny_vocabulary.save(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CorruptVocabularyCache, match=problem):
        Vocabulary.load(path)


def test_ids_outside_the_vocabulary_are_refused() -> None:
    with pytest.raises(ValueError, match="eog_ids \\[5\\]"):
        Vocabulary([b"a", b"b"], [5], [])


def test_duplicate_and_empty_tokens() -> None:
    vocab = Vocabulary([b"ab", b"", b"ab", b"a", b"<c>"], [], [4])
    assert vocab.text_token_ids() == [0, 2, 3]
    assert vocab.index.token_node[0] == vocab.index.token_node[2] >= 0
    assert vocab.index.token_node[1] == vocab.index.token_node[4] == -1
