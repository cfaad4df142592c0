"""The parsed form of a GBNF grammar, over Unicode code points, and its printing back to GBNF text.

This tree is what `Grammar.to_gbnf()` prints; the byte-level flat form in `ir.py` is compiled from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_runtime.grammar.gbnf_text import gbnf_class, gbnf_literal, repeat_suffix

MAX_CODE_POINT = 0x10FFFF


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class CharClass:
    """Code point ranges (inclusive); `negated` matches every code point outside them. `.` is the negated
    empty class."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool


@dataclass(frozen=True)
class RuleRef:
    name: str
    line: int
    column: int


@dataclass(frozen=True)
class TokenRef:
    """`<[id]>` matches exactly the token `id`; `!<[id]>` matches any one token but `id`."""

    token_id: int
    negated: bool


@dataclass(frozen=True)
class Sequence:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Alternatives:
    options: tuple[Sequence, ...]


@dataclass(frozen=True)
class Repeat:
    item: Node
    min: int
    max: int | None
    """None: unbounded."""


Node = Literal | CharClass | RuleRef | TokenRef | Sequence | Alternatives | Repeat


@dataclass(frozen=True)
class Rule:
    name: str
    body: Alternatives
    line: int
    column: int


@dataclass(frozen=True)
class GrammarSyntax:
    rules: tuple[Rule, ...]
    """In definition order; names are unique and every reference is defined."""

    def to_gbnf(self) -> str:
        return "".join(f"{rule.name} ::= {_alternatives(rule.body)}\n" for rule in self.rules)


def _alternatives(node: Alternatives) -> str:
    return " | ".join(_sequence(option) for option in node.options)


def _sequence(node: Sequence) -> str:
    """An empty sequence prints as `""`: a bare empty alternative at the end of a line would let the parser
    read on into the next rule."""
    return " ".join(_node(item) for item in node.items) if node.items else '""'


def _node(node: Node) -> str:
    if isinstance(node, Literal):
        return gbnf_literal(node.text)
    if isinstance(node, CharClass):
        return gbnf_class(node.ranges, negated=node.negated)
    if isinstance(node, RuleRef):
        return node.name
    if isinstance(node, TokenRef):
        return ("!" if node.negated else "") + f"<[{node.token_id}]>"
    if isinstance(node, Sequence):
        return "(" + _sequence(node) + ")"
    if isinstance(node, Alternatives):
        return "(" + _alternatives(node) + ")"
    return _node(node.item) + repeat_suffix(node.min, node.max)
