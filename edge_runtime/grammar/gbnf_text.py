"""Writing GBNF text: the one escaper for literals and character classes, and repetition suffixes.

The printer (`GrammarSyntax.to_gbnf`), the JSON Schema compiler and the tool-call grammars all write through
it, so a character is spelt one way everywhere. Besides what GBNF needs escaped (quotes, backslashes, class
specials, controls), C1 controls (U+0080..U+009F) and U+2028/U+2029 are written as `\\u` escapes: llama.cpp
and our parser read them raw too, but Python's `str.splitlines`, editors and log viewers break lines there,
which would cut one rule of the text in two.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

GrammarRules = list[tuple[str, str]]
"""A grammar as a compiler writes it: (rule name, body text) pairs, `root` first."""

_SIMPLE_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_CLASS_SPECIALS = "]-[^"


def escape(code_point: int, specials: str) -> str:
    """One character as GBNF text inside a literal (`specials` '"') or a class (`specials` "]-[^")."""
    char = chr(code_point)
    if char in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[char]
    if char == "^" and "^" in specials:
        return "\\x5E"
    if char in specials:
        return "\\" + char
    if code_point < 0x20 or code_point == 0x7F:
        return f"\\x{code_point:02X}"
    if 0x80 <= code_point <= 0x9F or code_point in (0x2028, 0x2029):
        return f"\\u{code_point:04X}"
    return char


_LITERAL_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""The characters `escape` writes as escapes inside a literal, besides quotes and backslashes: most literals
(keys, enum values) have none."""


def gbnf_literal(text: str) -> str:
    """A GBNF string literal matching exactly `text`."""
    if _LITERAL_CONTROLS.search(text) is None:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return '"' + "".join(escape(ord(char), '"') for char in text) + '"'


def gbnf_class(ranges: Iterable[tuple[int, int]], *, negated: bool = False) -> str:
    """A GBNF character class of the code point ranges `(low, high)` (or of every other character when
    negated); an empty negated class is written `.`."""
    parts = [
        escape(low, _CLASS_SPECIALS)
        if low == high
        else f"{escape(low, _CLASS_SPECIALS)}-{escape(high, _CLASS_SPECIALS)}"
        for low, high in ranges
    ]
    if negated and not parts:
        return "."
    return "[" + ("^" if negated else "") + "".join(parts) + "]"


def repeat_suffix(low: int, high: int | None) -> str:
    """The GBNF suffix repeating an item `low` to `high` times (None: no upper bound)."""
    if high is None:
        return "*" if low == 0 else "+" if low == 1 else f"{{{low},}}"
    if low == 0 and high == 1:
        return "?"
    if low == high:
        return f"{{{low}}}"
    return f"{{{low},{high}}}"


def rules_text(rules: GrammarRules) -> str:
    """The GBNF text of `rules`, one rule per line."""
    return "\n".join(map(" ::= ".join, rules)) + "\n" if rules else ""
