"""Helpers the grammar tests import by name (conftest.py holds only fixtures: several test folders have one)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from edge_runtime.grammar import Vocabulary

SYNTHETIC_CONTROL_BASE = 256
"""Synthetic vocabulary: ids 0-255 are the single bytes, 256 + n is the control token n of llama.cpp's tests."""
SYNTHETIC_CONTROL_COUNT = 32
SYNTHETIC_EOG = SYNTHETIC_CONTROL_BASE + SYNTHETIC_CONTROL_COUNT
SYNTHETIC_WORDS = (
    b'{"',
    b'"}',
    b'": ',
    b'", "',
    b"name",
    b'"name"',
    b"true",
    b"false",
    b"null",
    b"12",
    b"3.5",
    b"ab",
    b"abc",
    b"\xc3\xa9",
    b"\xc3",
    b"\xa9a",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x94\xb5",
    b" ",
    b"  ",
    b"\n",
    b"x+",
    b"+1",
    b"()",
    b"- ",
    b"aa",
    b"aaa",
    b"0x",
    b"FF",
    b"\\n",
    b"\\u00",
    b"ab",
)


def greedy_encode(vocab: Vocabulary, data: bytes) -> list[int]:
    """Longest-match tokenization over the vocabulary's text tokens (a real, if simple, tokenizer)."""
    by_bytes: dict[bytes, int] = {}
    for token in vocab.text_token_ids():
        by_bytes.setdefault(vocab.token_bytes[token], token)
    longest = max(len(key) for key in by_bytes)
    tokens: list[int] = []
    position = 0
    while position < len(data):
        for size in range(min(longest, len(data) - position), 0, -1):
            token = by_bytes.get(data[position : position + size])
            if token is not None:
                tokens.append(token)
                position += size
                break
        else:
            raise ValueError(f"byte {data[position]} has no token")
    return tokens


def new_mask(vocab: Vocabulary) -> np.ndarray:
    return np.zeros(vocab.size, dtype=bool)


REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_SAMPLE = Path(__file__).with_name("schema_corpus_sample.txt")


def corpus_module() -> ModuleType:
    """scripts/schema_corpus.py, imported by its own name with scripts/ on sys.path: its worker processes
    (spawned) import it again by that name."""
    scripts = str(REPO_ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    return importlib.import_module("schema_corpus")


def corpus_sample() -> tuple[list[str], int]:
    """The fixed sample's schema names and its pass floor (the `# floor: N` line)."""
    names, floor = [], -1
    for line in CORPUS_SAMPLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("# floor:"):
            floor = int(line.split(":", 1)[1])
        elif line and not line.startswith("#"):
            names.append(line)
    return names, floor
