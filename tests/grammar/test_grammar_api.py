"""The public Grammar API: errors with positions, GBNF round trip, UTF-8 classes, repetition size, metadata."""

from __future__ import annotations

import dataclasses

import pytest
from grammar_cases import GBNF_DIR

from edge_runtime.errors import BadRequest
from edge_runtime.grammar import Grammar, GrammarError, compile_gbnf


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ('root ::= "a"\nfoo ::= bar', 2, 9, "undefined rule 'bar'"),
        ('root ::= "abc', 1, 10, "unterminated string"),
        ("root ::= [a-", 1, 10, "unterminated character class"),
        ("root ::= [z-a]", 1, 11, "out of order"),
        ('root ::= "a"{,3}', 1, 14, "expecting an integer"),
        ('root ::= "a"{3,1}', 1, 13, "maximum below its minimum"),
        ('root ::= "\\q"', 1, 11, "unknown escape"),
        ('root ::= "\\x4"', 1, 11, "2 hex digits"),
        ('root ::= "\\uD800"', 1, 11, "surrogate"),
        ('root ::= "\\U00110000"', 1, 11, "beyond U+10FFFF"),
        ('root ::= * "a"', 1, 10, "expecting an item"),
        ('root ::= ("a" | "b"', 1, 20, "expecting ')'"),
        ('root ::= "a" )', 1, 14, "expecting newline"),
        ('root = "a"', 1, 6, "expecting '::='"),
        ('root ::= "a"\nroot ::= "b"', 2, 1, "defined twice"),
        ("root ::= <hello>", 1, 10, "<[id]>"),
        ('root ::= x\nx ::= y "a"\ny ::= "b"? x', 2, 1, "x -> y -> x"),
        ('root ::= x\nx ::= (x "a")?', 2, 1, "rule 'x' is left-recursive"),
    ],
)
def test_errors_carry_line_and_column(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(GrammarError) as caught:
        compile_gbnf(text)
    error = caught.value
    assert isinstance(error, BadRequest)
    assert (error.line, error.column) == (line, column)
    assert words in str(error)
    assert f"{line}:{column}" in str(error)


def test_repetitions_of_nullable_items_compile() -> None:
    optional_star = compile_gbnf('root ::= ("a"?)* "!"')
    assert optional_star.matches("!") and optional_star.matches("aaa!") and not optional_star.matches("b!")
    nested = compile_gbnf('root ::= (ws ("x" | ws))+ "."\nws ::= " "*')
    assert nested.matches(".") and nested.matches("  x x.") and not nested.matches("y.")


def test_missing_root_has_no_position() -> None:
    with pytest.raises(GrammarError, match="no 'root' rule"):
        compile_gbnf('start ::= "a"')


@pytest.mark.parametrize("path", sorted(GBNF_DIR.glob("*.gbnf")), ids=lambda path: path.stem)
def test_to_gbnf_round_trips(path: object) -> None:
    original = compile_gbnf(GBNF_DIR.joinpath(str(path)).read_text(encoding="utf-8"))
    again = compile_gbnf(original.to_gbnf())
    assert again.to_gbnf() == original.to_gbnf()
    assert again.flat.kinds.tolist() == original.flat.kinds.tolist()
    assert again.flat.values.tolist() == original.flat.values.tolist()
    assert (again.flat.byte_classes == original.flat.byte_classes).all()


def test_to_gbnf_keeps_escapes_and_repetitions() -> None:
    text = 'root ::= "q\\"\\\\\\n\\x01é" [^\\]\\-\\[a^] . x{2,5} x{3} x{2,} x? <[7]> !<[8]>\nx ::= "\\u2028"'
    original = compile_gbnf(text)
    printed = original.to_gbnf()
    assert "{2,5}" in printed and "{3}" in printed and "{2,}" in printed and "!<[8]>" in printed
    assert compile_gbnf(printed).to_gbnf() == printed


def test_negated_class_matches_whole_utf8_code_points() -> None:
    grammar = compile_gbnf('root ::= [^"\\\\]')
    for text in ["a", "é", "€", "🔵", "\x7f", "\U0010ffff", "\ue000"]:
        assert grammar.matches(text), text
    for data in [
        b'"',
        b"\\",
        b"\xc3",
        b"\xe2\x82",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\x80",
        b"ab",
    ]:
        assert not grammar.matches(data), data


def test_dot_and_ranges_over_code_points() -> None:
    assert compile_gbnf("root ::= . .").matches("é🔵")
    greek = compile_gbnf("root ::= [α-ω]+")
    assert greek.matches("αβω") and not greek.matches("αA") and not greek.matches("\u03c9\u03ca")
    wide = compile_gbnf("root ::= [\\u00ff-\\U00010400]")
    for code_point in (0xFF, 0x100, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10400):
        assert wide.matches(chr(code_point)), hex(code_point)
    for code_point in (0xFE, 0x10401):
        assert not wide.matches(chr(code_point)), hex(code_point)


def test_big_bounded_repetition_stays_linear() -> None:
    grammar = compile_gbnf('root ::= "1"{0,1000} [a-z]{500,2000}')
    assert grammar.flat.n_rules < 3000
    assert len(grammar.flat.kinds) < 12_000
    assert grammar.matches("1" * 1000 + "a" * 2000)
    assert grammar.matches("b" * 500)
    assert not grammar.matches("1" * 1001 + "a" * 500)
    assert not grammar.matches("a" * 499)
    assert not grammar.matches("a" * 2001)


def test_bounded_group_repetition() -> None:
    grammar = compile_gbnf('root ::= ("ab" | "c"){2,3} "!"')
    assert grammar.matches("abc!") and grammar.matches("ccab!")
    assert not grammar.matches("c!") and not grammar.matches("cccc!")


def test_comments_newlines_and_multiline_rules() -> None:
    grammar = compile_gbnf(
        '# leading comment\r\nroot ::= # after the arrow\n  (\n  "a" # in a group\n  | "b"\n  ) tail |\n'
        '  "c"\ntail ::= [0-9]{ 2 , 3 }\n'
    )
    assert grammar.matches("a12") and grammar.matches("b123") and grammar.matches("c")
    assert not grammar.matches("a1")


def test_unenforced_defaults_empty_and_is_replaceable() -> None:
    grammar = compile_gbnf('root ::= "a"')
    assert grammar.unenforced == ()
    relaxed = dataclasses.replace(grammar, unenforced=("uniqueItems",))
    assert relaxed.unenforced == ("uniqueItems",) and relaxed.matches("a")
    rebuilt = Grammar.from_syntax(grammar.syntax, unenforced=("not",))
    assert rebuilt.unenforced == ("not",) and not rebuilt.matches("b")


def _chain(last: str) -> str:
    """`root ::= n0 root "x"` over a chain n0 -> n1 -> ... -> n299 written last link first, so that working out
    which rules can match nothing takes the whole chain; `last` is what n299 matches."""
    links = [f"n{i} ::= n{i + 1}" for i in reversed(range(299))]
    return "\n".join([f"n299 ::= {last}", *links, 'root ::= n0 root "x" | "y"'])


def test_left_recursion_through_a_long_chain_of_empty_rules_is_refused() -> None:
    with pytest.raises(GrammarError, match="left"):
        compile_gbnf(_chain('""'))
    grammar = compile_gbnf(_chain('"z"'))
    assert grammar.matches("zyx") and not grammar.matches("yx")


def test_grammar_text_over_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(GrammarError, match="the limit is 524,288"):
        compile_gbnf("root ::= " + '"a" ' * 200_000)


def test_a_grammar_that_matches_nothing_is_refused() -> None:
    """An empty class on every way through root: a matcher would have no token to allow at the start."""
    with pytest.raises(GrammarError, match="matches nothing"):
        compile_gbnf("root ::= [^\\x00-\\U0010FFFF]")
    with pytest.raises(GrammarError, match="matches nothing"):
        compile_gbnf('root ::= x "a"\nx ::= [^\\x00-\\U0010FFFF]')
    dead_branch = compile_gbnf('root ::= "a" | x\nx ::= [^\\x00-\\U0010FFFF]')
    assert dead_branch.matches("a") and not dead_branch.matches("")
