"""Random reference-free grammars checked against Python's `re` over code points: the byte-level lowering
(UTF-8 classes, negation, bounded and unbounded repetition, also of nullable items, groups) must compile and
accept exactly the same strings."""

from __future__ import annotations

import random
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.grammar import Grammar, GrammarError, compile_gbnf
from edge_runtime.grammar.syntax import (
    Alternatives,
    CharClass,
    GrammarSyntax,
    Literal,
    Node,
    Repeat,
    Rule,
    Sequence,
)

ALPHABET = 'ab-]^\\"é€🔵\n'
SPAN_POINTS = [
    0,
    0x20,
    0x61,
    0x62,
    0x7F,
    0x80,
    0xE9,
    0x7FF,
    0x800,
    0x20AC,
    0xFFFF,
    0x10000,
    0x1F535,
    0x10FFFF,
]

MAX_ORACLE_TEXT = 24
"""Python's backtracking `re` is exponential on nested quantifiers over long texts; keep its inputs short. A
free run (EDGE_RUNTIME_HYPOTHESIS=explore) once drew a nesting that kept `re` busy for minutes; the default
profile draws the same examples every run (tests/conftest.py)."""

literals = st.text(st.sampled_from(ALPHABET), max_size=3).map(Literal)
ranges = st.tuples(st.sampled_from(SPAN_POINTS), st.sampled_from(SPAN_POINTS)).map(lambda p: (min(p), max(p)))
classes = st.builds(CharClass, st.lists(ranges, max_size=3).map(tuple), st.booleans())


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    sequences = st.lists(children, min_size=1, max_size=3).map(lambda items: Sequence(tuple(items)))
    return st.one_of(
        sequences,
        st.lists(sequences, min_size=2, max_size=3).map(lambda options: Alternatives(tuple(options))),
        st.builds(
            lambda item, low, extra: Repeat(item, low, None if extra is None else low + extra),
            children,
            st.integers(0, 3),
            st.none() | st.integers(0, 3),
        ),
    )


nodes = st.recursive(st.one_of(literals, classes), _extend, max_leaves=6)


def _regex(node: Node) -> str:
    if isinstance(node, Literal):
        return re.escape(node.text)
    if isinstance(node, CharClass):
        body = "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in node.ranges)
        if not body:
            return "[\\s\\S]" if node.negated else "[^\\s\\S]"
        return f"[{'^' if node.negated else ''}{body}]"
    if isinstance(node, Sequence):
        return "".join(f"(?:{_regex(item)})" for item in node.items)
    if isinstance(node, Alternatives):
        return "|".join(f"(?:{_regex(option)})" for option in node.options)
    assert isinstance(node, Repeat)
    bound = "" if node.max is None else str(node.max)
    return f"(?:{_regex(node.item)}){{{node.min},{bound}}}"


def _sample(node: Node, rng: random.Random) -> str:
    if isinstance(node, Literal):
        return node.text
    if isinstance(node, CharClass):
        candidates = [chr(point) for point in SPAN_POINTS if not 0xD800 <= point <= 0xDFFF]
        candidates += [chr(point) for low, high in node.ranges for point in (low, high, (low + high) // 2)]
        inside = [c for c in candidates if any(lo <= ord(c) <= hi for lo, hi in node.ranges) != node.negated]
        inside = [c for c in inside if not 0xD800 <= ord(c) <= 0xDFFF]
        return rng.choice(inside) if inside else ""
    if isinstance(node, Sequence):
        return "".join(_sample(item, rng) for item in node.items)
    if isinstance(node, Alternatives):
        return _sample(rng.choice(node.options), rng)
    count = rng.randint(node.min, node.min + 3 if node.max is None else node.max)
    return "".join(_sample(node.item, rng) for _ in range(count))


@settings(max_examples=120, deadline=None)
@given(node=nodes, seed=st.integers(0, 2**32 - 1))
def test_byte_grammar_agrees_with_python_re(node: Node, seed: int) -> None:
    syntax = GrammarSyntax((Rule("root", Alternatives((Sequence((node,)),)), 1, 1),))
    try:
        grammar: Grammar | None = compile_gbnf(syntax.to_gbnf())
    except GrammarError as exc:
        assert "matches nothing" in str(exc)
        grammar = None  # refused: no string may then match the regex either
    pattern = re.compile(_regex(node))
    rng = random.Random(seed)
    texts = {_sample(node, rng) for _ in range(4)}
    for text in list(texts):
        if text:
            cut = rng.randrange(len(text))
            texts.add(text[:cut] + text[cut + 1 :])
            texts.add(text[:cut] + rng.choice(ALPHABET) + text[cut:])
    texts.update(rng.choice(ALPHABET) * rng.randint(0, 3) for _ in range(3))
    for text in texts:
        if len(text) <= MAX_ORACLE_TEXT:
            accepted = grammar is not None and grammar.matches(text)
            assert accepted == bool(pattern.fullmatch(text)), (text, pattern.pattern)
