"""Printing a parsed grammar back to GBNF, on random syntax trees: the text parses to the same grammar."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.grammar import compile_gbnf
from edge_runtime.grammar.gbnf import parse_gbnf
from edge_runtime.grammar.syntax import (
    Alternatives,
    CharClass,
    GrammarSyntax,
    Literal,
    Node,
    Repeat,
    Rule,
    RuleRef,
    Sequence,
    TokenRef,
)

code_points = st.integers(min_value=0, max_value=0x10FFFF).filter(lambda cp: not 0xD800 <= cp <= 0xDFFF)
literals = st.text(st.characters(codec="utf-8"), max_size=6).map(Literal)
ranges = st.tuples(code_points, code_points).map(lambda pair: (min(pair), max(pair)))
classes = st.builds(CharClass, st.lists(ranges, max_size=4).map(tuple), st.booleans())
tokens = st.builds(TokenRef, st.integers(min_value=0, max_value=300_000), st.booleans())
references = st.sampled_from(["root", "item-2", "x"]).map(lambda name: RuleRef(name, 0, 0))
leaves = st.one_of(literals, classes, tokens, references)


def _repeat(item: Node, low: int, extra: int | None) -> Repeat:
    return Repeat(item, low, None if extra is None else low + extra)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    sequences = st.lists(children, max_size=3).map(lambda items: Sequence(tuple(items)))
    return st.one_of(
        sequences,
        st.lists(sequences, min_size=1, max_size=3).map(lambda options: Alternatives(tuple(options))),
        st.builds(_repeat, children, st.integers(0, 4), st.none() | st.integers(0, 4)),
    )


nodes = st.recursive(leaves, _extend, max_leaves=8)
bodies = st.lists(
    st.lists(nodes, max_size=4).map(lambda items: Sequence(tuple(items))), min_size=1, max_size=3
)


@settings(max_examples=60, deadline=None)
@given(root=bodies, item=bodies, x=bodies)
def test_printed_grammar_parses_to_the_same_grammar(
    root: list[Sequence], item: list[Sequence], x: list[Sequence]
) -> None:
    syntax = GrammarSyntax(
        tuple(
            Rule(name, Alternatives(tuple(body)), 0, 0)
            for name, body in (("root", root), ("item-2", item), ("x", x))
        )
    )
    printed = syntax.to_gbnf()
    reparsed = parse_gbnf(printed)
    assert reparsed.to_gbnf() == printed
    assert _strip_positions(reparsed) == _strip_positions(parse_gbnf(reparsed.to_gbnf()))


def _strip_positions(syntax: GrammarSyntax) -> str:
    return repr([(rule.name, rule.body) for rule in syntax.rules]).replace("line=", "").replace("column=", "")


def test_printed_literals_keep_their_bytes() -> None:
    text = 'quote" backslash\\ newline\n tab\t nul\x00 del\x7f c1\x85 ls\u2028 emoji🔵'
    syntax = GrammarSyntax((Rule("root", Alternatives((Sequence((Literal(text),)),)), 0, 0),))
    grammar = compile_gbnf(syntax.to_gbnf())
    assert grammar.matches(text) and not grammar.matches(text[:-1])
    assert compile_gbnf(grammar.to_gbnf()).matches(text)


def test_empty_alternatives_print_unambiguously() -> None:
    grammar = compile_gbnf('root ::= x "b"\nx ::= "a" |\n  ""\n')
    assert grammar.matches("b") and grammar.matches("ab")
    assert compile_gbnf(grammar.to_gbnf()).to_gbnf() == grammar.to_gbnf()
