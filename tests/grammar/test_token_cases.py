"""llama.cpp's integration cases that mix special tokens into the text, fed as tokens of a synthetic
vocabulary: special id N becomes control token 256 + N, and text goes in one byte token at a time."""

from __future__ import annotations

from typing import Any

import pytest
from grammar_cases import integration_grammar_cases
from grammar_support import SYNTHETIC_CONTROL_BASE

from edge_runtime.grammar import GrammarMatcher, Vocabulary, compile_gbnf

TOKEN_CASES = [
    case
    for case in integration_grammar_cases()
    if any(not isinstance(text, str) for text in case["passing"] + case["failing"])
]


def _remap_grammar(grammar: str) -> str:
    for token_id in range(100, -1, -1):
        grammar = grammar.replace(f"<[{token_id}]>", f"<[{SYNTHETIC_CONTROL_BASE + token_id}]>")
    return grammar


def _tokens(sample: str | dict[str, Any]) -> list[int]:
    parts = [sample] if isinstance(sample, str) else sample["parts"]
    tokens: list[int] = []
    for part in parts:
        if isinstance(part, int):
            tokens.append(SYNTHETIC_CONTROL_BASE + part)
        else:
            tokens.extend(part.encode("utf-8"))
    return tokens


def _accepts_whole(grammar_text: str, tokens: list[int], vocab: Vocabulary) -> bool:
    matcher = GrammarMatcher(compile_gbnf(grammar_text), vocab)
    return all(matcher.accept_token(token) for token in tokens) and matcher.is_complete()


def test_token_cases_are_present() -> None:
    assert len(TOKEN_CASES) == 2


@pytest.mark.parametrize("case", TOKEN_CASES, ids=lambda case: case["name"])
def test_token_case(case: dict[str, Any], synthetic_vocabulary: Vocabulary) -> None:
    grammar = _remap_grammar(case["grammar"])
    for sample in case["passing"]:
        assert _accepts_whole(grammar, _tokens(sample), synthetic_vocabulary), sample
    for sample in case["failing"]:
        assert not _accepts_whole(grammar, _tokens(sample), synthetic_vocabulary), sample
