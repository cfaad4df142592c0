"""llama.cpp's own grammar tests (parser, integration, build failures) and example grammars, at byte level."""

from __future__ import annotations

from typing import Any

import pytest
from grammar_cases import GBNF_DIR, integration_grammar_cases, load_llamacpp

from edge_runtime.grammar import GrammarError, compile_gbnf

PARSER_CASES = load_llamacpp("grammar_parser.json")["cases"]
BUILD_FAILURES = load_llamacpp("grammar_integration.json")["grammar_build_failures"]
TEXT_ONLY_CASES = [
    case
    for case in integration_grammar_cases()
    if all(isinstance(text, str) for text in case["passing"] + case["failing"])
]


@pytest.mark.parametrize("case", PARSER_CASES, ids=lambda case: f"line{case['source_line']}")
def test_parser_case(case: dict[str, Any]) -> None:
    if case["expected"] == "ok":
        compile_gbnf(case["grammar"])
    else:
        with pytest.raises(GrammarError):
            compile_gbnf(case["grammar"])


@pytest.mark.parametrize("case", BUILD_FAILURES, ids=lambda case: case["name"])
def test_build_failure_is_refused(case: dict[str, Any]) -> None:
    with pytest.raises(GrammarError) as caught:
        compile_gbnf(case["grammar"])
    expected_words = {
        "parses_but_no_root_rule": "root",
        "parse_error_undefined_rule": "undefined",
        "build_fails_left_recursion": "left",
    }[case["expected"]]
    assert expected_words in str(caught.value)


def _feed_bytes(grammar_text: str, text: str) -> tuple[bool, bool]:
    """(never rejected, complete at the end), feeding one byte at a time through a matcher-free walk."""
    grammar = compile_gbnf(grammar_text)
    automaton = grammar.automaton
    state = automaton.initial
    for byte in text.encode("utf-8"):
        state = automaton.next_state(state, byte)
        if state == 0:
            return False, False
    return True, automaton.is_complete(state)


@pytest.mark.parametrize("case", TEXT_ONLY_CASES, ids=lambda case: case["name"])
def test_integration_case(case: dict[str, Any]) -> None:
    grammar = compile_gbnf(case["grammar"])
    for text in case["passing"]:
        assert _feed_bytes(case["grammar"], text) == (True, True), text
        assert grammar.matches(text)
    for text in case["failing"]:
        assert _feed_bytes(case["grammar"], text) != (True, True), text
        assert not grammar.matches(text)


EXAMPLE_SAMPLES = {
    "arithmetic": ["1+2=3\n", "(x *4)=y\n(a)= b\n"],
    "c": ["int main(){return 0;}", "float f(int x){y = x*2;while(y<10){y = y+1;}return y;}"],
    "chess": ["1. e4 e5\n2. Nf3 Nc6\n3. Bb5 a6\n", "1. d4 d5\n2. c4 dxc4\n3. O-O-O Qxd8+\n"],
    "english": ["Hello, world! This is a test.", "one\ttwo\nthree"],
    "japanese": ["こんにちは 世界", "カタカナ、ひらがな"],
    "json": ['{"a": [1, -2.5e3, "x\\n\\u00e9", true, null], "b": {}}', '{"key":"välue"}'],
    "json_arr": ['[\n{"a": 1},\n"b"]', "[\n]"],
    "list": ["- milk\n- eggs\n", "- ünïcödé item\n"],
}
EXAMPLE_NON_SAMPLES = {
    "arithmetic": ["1+2=3"],
    "c": ["int main(){return 0}"],
    "chess": ["1. e4\n"],
    "english": [" leading space"],
    "japanese": ["hello"],
    "json": ['{"a": }', '{"a": 01}'],
    "json_arr": ['{"a": 1}'],
    "list": ["- two\r\nlines\n"],
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_SAMPLES))
def test_example_grammar_accepts_its_language(name: str) -> None:
    grammar = compile_gbnf((GBNF_DIR / f"{name}.gbnf").read_text(encoding="utf-8"))
    for text in EXAMPLE_SAMPLES[name]:
        assert grammar.matches(text), text
    for text in EXAMPLE_NON_SAMPLES[name]:
        assert not grammar.matches(text), text


def test_every_shipped_example_is_covered() -> None:
    assert sorted(path.stem for path in GBNF_DIR.glob("*.gbnf")) == sorted(EXAMPLE_SAMPLES)
