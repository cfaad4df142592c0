"""Vocabularies for token-level grammar tests: the tiny model's real byte-level BPE vocabulary, and a small
synthetic one with control and end-of-generation tokens at chosen ids."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gguf
import pytest
from grammar_support import SYNTHETIC_CONTROL_BASE, SYNTHETIC_CONTROL_COUNT, SYNTHETIC_EOG, SYNTHETIC_WORDS

from edge_runtime.grammar import Vocabulary

REPO_ROOT = Path(__file__).resolve().parents[2]


def _byte_to_unicode() -> dict[int, str]:
    script = REPO_ROOT / "scripts" / "make_tiny_model.py"
    spec = importlib.util.spec_from_file_location("make_tiny_model_for_grammar_tests", script)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    mapping: dict[int, str] = module.byte_to_unicode()
    return mapping


@pytest.fixture(scope="session")
def tiny_vocabulary(tiny_model_path: Path) -> Vocabulary:
    """The tiny model's tokens as raw bytes (GPT-2 byte mapping undone), read with the gguf package."""
    reader = gguf.GGUFReader(tiny_model_path)

    def field_values(name: str) -> list[object]:
        field = reader.fields[name]
        return [field.contents(index) for index in range(len(field.data))]

    tokens = [str(token) for token in field_values("tokenizer.ggml.tokens")]
    types = [int(kind) for kind in field_values("tokenizer.ggml.token_type")]  # type: ignore[call-overload]
    eog = {
        int(reader.fields[key].contents())
        for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")
    }
    control = [index for index, kind in enumerate(types) if kind == int(gguf.TokenType.CONTROL)]
    to_byte = {char: byte for byte, char in _byte_to_unicode().items()}
    token_bytes = [
        b"" if index in control else bytes(to_byte[char] for char in token)
        for index, token in enumerate(tokens)
    ]
    return Vocabulary(token_bytes, eog, control)


@pytest.fixture(scope="session")
def synthetic_vocabulary() -> Vocabulary:
    tokens = [bytes([byte]) for byte in range(256)]
    tokens += [f"<ctl{n}>".encode() for n in range(SYNTHETIC_CONTROL_COUNT)]
    tokens.append(b"<eos>")
    tokens += list(SYNTHETIC_WORDS)
    control = range(SYNTHETIC_CONTROL_BASE, SYNTHETIC_EOG + 1)
    return Vocabulary(tokens, [SYNTHETIC_EOG], control)
