"""The native lowering (grammar/native_lowering.py over native/gbnf_lower.c) builds the flat grammar that the
Python parser and lowering build from the same rules, array for array, and gives up where it should (GBNF that
compilers do not write, errors, failed checks), so that the Python path compiles or explains."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from grammar_cases import GBNF_DIR, integration_grammar_cases, load_llamacpp
from grammar_support import corpus_module, corpus_sample

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.gbnf import parse_gbnf, parse_gbnf_rules
from edge_runtime.grammar.gbnf_text import GrammarRules
from edge_runtime.grammar.grammar import Grammar, _lowered_lines, compile_gbnf, compile_rules
from edge_runtime.grammar.ir import compile_syntax
from edge_runtime.grammar.json_schema.front import _schema_rules
from edge_runtime.grammar.native_lowering import lower_rules

ARRAYS = ("kinds", "values", "rule_alts", "alt_starts", "byte_classes")


def assert_lowered_alike(rules: GrammarRules) -> None:
    native = lower_rules(rules)
    assert native is not None, rules
    expected = compile_syntax(parse_gbnf_rules(rules))
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(native, name), getattr(expected, name), err_msg=name)
        assert getattr(native, name).dtype == getattr(expected, name).dtype
    assert (native.root, native.rule_names) == (expected.root, expected.rule_names)


CONSTRUCTS: list[GrammarRules] = [
    [("root", '"abc" | "" | "d"')],
    [("root", 'a b a'), ("a", '"x"'), ("b", '[a-c] | a')],
    [("root", '"\\x41\\u00e9\\U0001F600\\t\\r\\n\\\\\\"\\[\\]\\-" "é€😀"')],
    [("root", '[^"\\\\] [a-zA-Z0-9_] [\\x00-\\x1F] [é-ÿ] [\\u0100-\\uFFFF] [\\U00010000-\\U0010FFFF]')],
    [("root", '[^a] . [] [a-a-] [\\--\\]] [-a] [z-]')],
    [("root", '[\\uD7FF-\\uE000] [\\x7F-\\x80] [\\u07FF-\\u0800] [\\uFFFF-\\U00010000] [^\\x00-\\x7F]')],
    [("root", '( "a" | "b" ) ( "c" ) ( "d" "e" ) ( ) ( "a" | "b" )')],
    [("root", '"a"* "b"+ "c"? "d"{3} "e"{2,} "f"{1,4} "g"{0} "h"{0,0} ( "i" "j" ){2,3} x*'), ("x", '"k"')],
    [("root", '"a"** ( "b"? )* ""* ( "c" | "" )+ "d"{ 2 , 5 } "e"{2,3}{1,2}')],
    [("root", '"a"{0,40} "a"{0,40} ( "a"{0,40} )* "b"* "b"*')],
    [("root", 'x | y'), ("x", '"q" ( y | "r" )*'), ("y", '"s" x? "t"')],
    [("root", 'r-1 r-2'), ("r-1", 'r-2*'), ("r-2", '"z"')],
]


@pytest.mark.parametrize("rules", CONSTRUCTS, ids=range(len(CONSTRUCTS)))
def test_every_construct_lowers_as_in_python(rules: GrammarRules) -> None:
    assert_lowered_alike(rules)


def _rules_of(text: str) -> GrammarRules:
    """A grammar text as a compiler would write it: its rules printed one per line."""
    lines = parse_gbnf(text).to_gbnf().splitlines()
    return [(name, body) for name, body in (line.split(" ::= ", 1) for line in lines)]


def _conformance_texts() -> list[str]:
    texts = [path.read_text(encoding="utf-8") for path in sorted(GBNF_DIR.glob("*.gbnf"))]
    texts += [case["grammar"] for case in integration_grammar_cases()]
    texts += [case["grammar"] for case in load_llamacpp("grammar_parser.json")["cases"] if case["expected"] == "ok"]
    return texts


def test_conformance_grammars_lower_as_in_python_or_give_up_on_tokens_only() -> None:
    lowered = 0
    for text in _conformance_texts():
        rules = _rules_of(text)
        if any("<[" in body for _, body in rules):
            assert lower_rules(rules) is None
            continue
        try:
            compile_syntax(parse_gbnf_rules(rules))
        except GrammarError:
            assert lower_rules(rules) is None
            continue
        assert_lowered_alike(rules)
        lowered += 1
    assert lowered >= 20


def _schemas() -> list[object]:
    schemas = [case["schema"] for case in load_llamacpp("json_schema_to_grammar.json")["cases"]]
    names, _ = corpus_sample()
    return schemas + [corpus_module().load_case(name).schema for name in names[::3]]


def test_schema_grammars_lower_as_in_python() -> None:
    lowered = 0
    for schema in _schemas():
        try:
            rules, _ = _schema_rules(schema, False, False, None)
        except (GrammarError, RecursionError):
            continue
        assert_lowered_alike(rules)
        lowered += 1
    assert lowered >= 100


GIVEN_UP_AND_COMPILED = [
    [("root", '"a" # a comment')],
    [("root", "(" * 101 + '"a"' + ")" * 101)],
    [("root", '<[5]> "a"')],
    [("root", '!<[5]>')],
]


@pytest.mark.parametrize("rules", GIVEN_UP_AND_COMPILED, ids=range(len(GIVEN_UP_AND_COMPILED)))
def test_gbnf_compilers_do_not_write_goes_to_the_python_path(rules: GrammarRules) -> None:
    assert lower_rules(rules) is None
    assert compile_rules(rules).flat.n_rules >= 1


GIVEN_UP_AND_EXPLAINED = [
    ([("root", "b")], "undefined rule 'b'"),
    ([("a", '"x"')], "no 'root' rule"),
    ([("root", '"x"'), ("root", '"y"')], "defined twice"),
    ([("root", '"x"'), ("a b", '"y"')], "expecting a rule name"),
    ([("root", '"\\q"')], "unknown escape"),
    ([("root", '"\\uD800"')], "surrogate"),
    ([("root", '"\\U00110000"')], re.escape("beyond U+10FFFF")),
    ([("root", '"a"\n| "b"')], "expecting newline or end"),
    ([("root", '"\\x4"')], "hex digits"),
    ([("root", '"abc')], "unterminated string"),
    ([("root", "[abc")], "unterminated character class"),
    ([("root", "[z-a]")], "out of order"),
    ([("root", '"a"{10001}')], "exceeds the limit"),
    ([("root", '"a"{3,2}')], "maximum below its minimum"),
    ([("root", '"a"{,3}')], "expecting an integer"),
    ([("root", '* "a"')], "expecting an item"),
    ([("root", '( "a"')], re.escape("expecting ')'")),
    ([("root", '"a" )')], "expecting newline or end"),
    ([("root", 'root "a" | "b"')], "left-recursive"),
    ([("root", 'a "x"'), ("a", 'b | ""'), ("b", 'root')], "left recursion"),
    ([("root", '"a" root')], "can never finish"),
    ([("root", "(" * 5000 + '"a"' + ")" * 5000)], "nested too deeply"),
    ([("root", '"a"{10000} ' * 201)], "over 2,000,000 copies"),
    ([("root", '"\\ud800"'.replace("\\ud800", "\ud800"))], "surrogate"),
]


@pytest.mark.parametrize("rules, message", GIVEN_UP_AND_EXPLAINED, ids=range(len(GIVEN_UP_AND_EXPLAINED)))
def test_errors_are_explained_by_the_python_path(rules: GrammarRules, message: str) -> None:
    assert lower_rules(rules) is None
    with pytest.raises(GrammarError, match=message):
        compile_rules(rules)


def test_a_right_recursive_star_through_a_nullable_rule_is_accepted_as_in_python() -> None:
    """A cycle through last-position references only replaces frames (ir._check_left_recursion): allowed."""
    assert_lowered_alike([("root", 'a*'), ("a", '"x" | b'), ("b", '""')])


VALID_PIECES = [
    '"a"', '"ab"', '""', '"\\x41"', '"\\u00e9"', '"\\U0001F600"', '"é"', '"\\\\"', '"\\""', '"\\n"', "[a-z]", "[^a]",
    "[]", "[^]", "[é-ÿ]", "[\\x00-\\U0010FFFF]", "[\\]\\-]", ".", "r0", "r1", "r2", "|", "*", "+", "?", "{2}",
    "{1,3}", "{0,}", "\t",
]
BROKEN_PIECES = [
    '"\\q"', '"\\x4"', '"\\uD800"', '"unterminated', "[z-a]", "[a-", "undefined", "(", ")", "{3,1}", "{10001}",
    "{", "{2", "<[3]>", "# comment", "\n",
]


def random_rules(rng: random.Random) -> GrammarRules:
    """Up to four rules (root and r0..r2) of random GBNF pieces: mostly valid, often not."""
    names = ["root", *(f"r{index}" for index in range(rng.randrange(4)))]
    rules = []
    for name in names:
        pieces = [
            rng.choice(BROKEN_PIECES if rng.random() < 0.05 else VALID_PIECES) for _ in range(rng.randrange(1, 7))
        ]
        if rng.random() < 0.6:  # mostly balanced groups
            pieces = [piece for piece in pieces if piece not in ("(", ")")]
            if rng.random() < 0.5:
                cut = rng.randrange(len(pieces) + 1)
                pieces = [*pieces[:cut], "(", *pieces[cut:], ")"]
        rules.append((name, " ".join(pieces)))
    return rules


def test_random_rules_lower_as_in_python_or_go_to_it() -> None:
    """Differential: where the Python path compiles, the native arrays are its arrays; where it refuses (or
    on GBNF compilers do not write), the native side gives up. Seeded, so a failure reproduces."""
    rng = random.Random(20261128)
    lowered = given_up = 0
    for _ in range(3000):
        rules = random_rules(rng)
        try:
            compile_syntax(parse_gbnf_rules(rules))
        except GrammarError:
            assert lower_rules(rules) is None, rules
            given_up += 1
            continue
        if any(marker in body for _, body in rules for marker in ("<[", "#", "\n")):
            assert lower_rules(rules) is None, rules
            continue
        assert_lowered_alike(rules)
        lowered += 1
    assert lowered > 500 and given_up > 300, (lowered, given_up)


def random_text(rng: random.Random) -> str:
    """`random_rules` as GBNF text, a rule per line, at times with what GBNF allows across lines: a rule
    continued after `|` or inside a group, blank lines, CRLF line ends, a comment."""
    lines = [f"{name} ::= {body}" for name, body in random_rules(rng)]
    if rng.random() < 0.3:
        index = rng.randrange(len(lines))
        lines[index] = lines[index].replace("| ", "|\n  ", 1).replace("( ", "(\n", 1)
    if rng.random() < 0.2:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(["", "   ", "# a comment", "\t"]))
    return ("\r\n" if rng.random() < 0.1 else "\n").join(lines) + rng.choice(["", "\n"])


def test_gbnf_text_compiles_as_the_parser_reads_it() -> None:
    """compile_gbnf lowers a text written a rule per line in C, and leaves the rest to the parser: either
    way, the grammar (or the error) is the parser's."""
    rng = random.Random(112826)
    lowered = 0
    for _ in range(3000):
        text = random_text(rng)
        try:
            expected = Grammar(text, compile_syntax(parse_gbnf(text))).flat
        except GrammarError as error:
            with pytest.raises(GrammarError) as raised:
                compile_gbnf(text)
            assert raised.value.reason == error.reason, text
            continue
        got = compile_gbnf(text).flat
        for name in ARRAYS:
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=text)
        assert (got.root, got.rule_names) == (expected.root, expected.rule_names), text
        lowered += _lowered_lines(text) is not None
    assert lowered > 300
