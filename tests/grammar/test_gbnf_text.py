"""The one GBNF escaper: what the JSON Schema compiler, the tool-call grammars and the printer write."""

from __future__ import annotations

import pytest

from edge_runtime.grammar import compile_gbnf
from edge_runtime.grammar.gbnf_text import gbnf_class, gbnf_literal, repeat_suffix
from edge_runtime.grammar.syntax import Alternatives, GrammarSyntax, Literal, Rule, Sequence

LINE_BREAKING = "next line\x85 c1\x9f line\u2028 paragraph\u2029 end"
"""Characters Python's str.splitlines (and editors, log viewers) break lines at, though GBNF does not."""


def test_line_breaking_characters_are_escaped_so_a_rule_stays_on_one_line() -> None:
    # The tool-call grammars used to write these raw: "a\x85b" as a literal was two lines of text.
    literal = gbnf_literal(LINE_BREAKING)
    assert literal == '"next line\\u0085 c1\\u009F line\\u2028 paragraph\\u2029 end"'
    grammar_text = f"root ::= {literal} tail\ntail ::= [\\u2028]?\n"
    assert len(grammar_text.splitlines()) == 2
    grammar = compile_gbnf(grammar_text)
    assert grammar.matches(LINE_BREAKING) and grammar.matches(LINE_BREAKING + "\u2028")
    assert not grammar.matches(LINE_BREAKING.replace("\x85", "\n"))


@pytest.mark.parametrize(
    "text", ['quote" backslash\\ newline\n tab\t cr\r nul\x00 del\x7f é 🔵', "", "^]-[", "\\x41"]
)
def test_literals_match_exactly_their_text(text: str) -> None:
    grammar = compile_gbnf(f"root ::= {gbnf_literal(text)}")
    assert grammar.matches(text)
    assert not grammar.matches(text + "x")


def test_the_printer_writes_literals_with_the_same_escaper() -> None:
    syntax = GrammarSyntax((Rule("root", Alternatives((Sequence((Literal(LINE_BREAKING),)),)), 0, 0),))
    assert syntax.to_gbnf() == f"root ::= {gbnf_literal(LINE_BREAKING)}\n"


def test_classes_escape_their_specials() -> None:
    specials = [(ord(c), ord(c)) for c in "]-[^\\"] + [(0x85, 0x85), (0x2028, 0x2029)]
    grammar = compile_gbnf(f"root ::= {gbnf_class(specials)}+")
    assert grammar.matches("]-[^\\\x85\u2028\u2029")
    assert not grammar.matches("a")
    assert not compile_gbnf(f"root ::= {gbnf_class(specials, negated=True)}").matches("^")
    assert gbnf_class([], negated=True) == "."


def test_repeat_suffixes() -> None:
    assert [repeat_suffix(*bounds) for bounds in [(0, None), (1, None), (2, None), (0, 1), (3, 3), (1, 4)]] == [
        "*", "+", "{2,}", "?", "{3}", "{1,4}"
    ]
