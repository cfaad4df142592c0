"""ECMAScript regular expressions (the subset a grammar can express exactly) compiled to GBNF over the
content of a JSON string, i.e. over characters as JSON writes them (`"` as `\\"`, controls escaped).

Supported: literals and escapes, classes (ranges, negation, `\\d \\w \\s` and their negations), `.`, groups
(capturing, non-capturing, named), alternation, quantifiers (`* + ? {m} {m,} {m,n}`, lazy or not) and the
anchors `^` `$` at the ends of the pattern. An unanchored end matches anything there (JSON Schema's search
semantics). Backreferences, lookaround, word boundaries and Unicode properties are refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.json_schema.char_sets import Ranges, complement, json_char_set, normalized

MAX_REPEAT = 10_000
MAX_PATTERN_CHARS = 10_000
"""Longer patterns are refused: compiling grows with their length (a 60k-alternative pattern took ~45 s)."""

_DIGIT: Ranges = ((0x30, 0x39),)
_WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_SPACE: Ranges = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
)
_LINE_TERMINATORS: Ranges = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))
_CONTROL_ESCAPES = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D}


# ------------------------------------------------------------------------------------------ the parser


@dataclass(frozen=True)
class _Set:
    ranges: Ranges


@dataclass(frozen=True)
class _Seq:
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Alt:
    options: tuple[_Node, ...]


@dataclass(frozen=True)
class _Repeat:
    item: _Node
    min: int
    max: int | None


@dataclass(frozen=True)
class _Anchor:
    start: bool


_Node = _Set | _Seq | _Alt | _Repeat | _Anchor


class _RegexParser:
    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.pos = 0

    def refuse(self, what: str) -> GrammarError:
        return GrammarError(
            f"pattern {self.text!r}: {what} (at offset {self.pos}) cannot be compiled to a grammar"
        )

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> _Node:
        node = self.alternatives()
        if self.pos < len(self.text):
            raise self.refuse(f"unbalanced {self.peek()!r}")
        return node

    def alternatives(self) -> _Node:
        options = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            options.append(self.sequence())
        return options[0] if len(options) == 1 else _Alt(tuple(options))

    def sequence(self) -> _Seq:
        items: list[_Node] = []
        while self.peek() and self.peek() not in "|)":
            atom = self.atom()
            items.append(self.quantified(atom))
        return _Seq(tuple(items))

    def quantified(self, atom: _Node) -> _Node:
        char = self.peek()
        bounds: tuple[int, int | None] | None = None
        if char in ("*", "+", "?"):
            self.pos += 1
            bounds = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
        elif char == "{":
            bounds = self.braces()
        if bounds is None:
            return atom
        if isinstance(atom, _Anchor):
            raise self.refuse("a quantified anchor")
        if self.peek() == "?":
            self.pos += 1
        low, high = bounds
        if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
            raise self.refuse(f"a repetition count above {MAX_REPEAT}")
        if high is not None and high < low:
            raise self.refuse("a repetition whose maximum is below its minimum")
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and self.braces_follow_here()):
            raise self.refuse("a quantifier with nothing to repeat")
        return _Repeat(atom, low, high)

    def braces(self) -> tuple[int, int | None] | None:
        end = self.text.find("}", self.pos)
        if end < 0:
            return None
        inside = self.text[self.pos + 1 : end]
        low_text, comma, high_text = inside.partition(",")
        if not low_text.isdigit() or (high_text and not high_text.isdigit()):
            return None
        self.pos = end + 1
        low = int(low_text)
        if not comma:
            return low, low
        return low, int(high_text) if high_text else None

    def atom(self) -> _Node:
        char = self.peek()
        self.pos += 1
        if char == "^":
            return _Anchor(start=True)
        if char == "$":
            return _Anchor(start=False)
        if char == ".":
            return _Set(complement(_LINE_TERMINATORS))
        if char == "(":
            return self.group()
        if char == "[":
            return _Set(self.char_class())
        if char == "\\":
            return self.escape(in_class=False)
        if char in "*+?":
            raise self.refuse(f"a quantifier {char!r} with nothing to repeat")
        if char == "{" and self.braces_follow():
            raise self.refuse("a quantifier '{' with nothing to repeat")
        return _Set(((ord(char), ord(char)),))

    def braces_follow(self) -> bool:
        """Whether the '{' just consumed starts a quantifier."""
        self.pos -= 1
        found = self.braces_follow_here()
        self.pos += 1
        return found

    def braces_follow_here(self) -> bool:
        saved = self.pos
        found = self.braces() is not None
        self.pos = saved
        return found

    def group(self) -> _Node:
        if self.text.startswith("?:", self.pos):
            self.pos += 2
        elif self.text.startswith("?<", self.pos) and self.text[self.pos + 2 : self.pos + 3] not in (
            "=",
            "!",
        ):
            end = self.text.find(">", self.pos)
            if end < 0:
                raise self.refuse("an unterminated group name")
            self.pos = end + 1
        elif self.peek() == "?":
            raise self.refuse("a lookaround assertion")
        inner = self.alternatives()
        if self.peek() != ")":
            raise self.refuse("an unclosed group")
        self.pos += 1
        return inner

    def char_class(self) -> Ranges:
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        while True:
            char = self.peek()
            if not char:
                raise self.refuse("an unterminated character class")
            if char == "]":
                self.pos += 1
                break
            low = self.class_atom()
            if self.peek() == "-" and self.text[self.pos + 1 : self.pos + 2] not in ("]", ""):
                self.pos += 1
                high = self.class_atom()
                if len(low) != 1 or len(high) != 1 or low[0][0] != low[0][1] or high[0][0] != high[0][1]:
                    ranges.extend(low + ((0x2D, 0x2D),) + high)  # a class escape at one end: '-' is literal
                    continue
                if high[0][0] < low[0][0]:
                    raise self.refuse("a class range out of order")
                ranges.append((low[0][0], high[0][0]))
            else:
                ranges.extend(low)
        result = normalized(ranges)
        return complement(result) if negated else result

    def class_atom(self) -> Ranges:
        char = self.peek()
        self.pos += 1
        if char == "\\":
            if self.peek() == "b":
                self.pos += 1
                return ((0x08, 0x08),)
            if self.peek() == "-":
                self.pos += 1
                return ((0x2D, 0x2D),)
            node = self.escape(in_class=True)
            if not isinstance(node, _Set):
                raise self.refuse("an escape that is not a character inside a class")
            return node.ranges
        return ((ord(char), ord(char)),)

    def escape(self, in_class: bool) -> _Node:
        char = self.peek()
        if not char:
            raise self.refuse("a trailing backslash")
        self.pos += 1
        sets = {"d": _DIGIT, "w": _WORD, "s": _SPACE}
        if char in sets:
            return _Set(sets[char])
        if char.lower() in sets:
            return _Set(complement(sets[char.lower()]))
        if char in _CONTROL_ESCAPES:
            return _single(_CONTROL_ESCAPES[char])
        if char == "0" and not self.peek().isdigit():
            return _single(0)
        if char in "bB":
            raise self.refuse("a word boundary assertion")
        if char.isdigit() or char == "k":
            raise self.refuse("a backreference")
        if char in "pP":
            raise self.refuse("a Unicode property escape")
        if char == "c" and self.peek().isalpha() and self.peek().isascii():
            self.pos += 1
            return _single(ord(self.text[self.pos - 1]) % 32)
        if char == "x":
            return _single(self.hex_digits(2))
        if char == "u":
            if self.peek() == "{":
                end = self.text.find("}", self.pos)
                digits = self.text[self.pos + 1 : end] if end > 0 else ""
                if not digits or any(c not in "0123456789abcdefABCDEF" for c in digits):
                    raise self.refuse("a malformed \\u{...} escape")
                self.pos = end + 1
                return _single(int(digits, 16))
            code = self.hex_digits(4)
            if 0xD800 <= code <= 0xDBFF and self.text.startswith("\\u", self.pos):
                saved = self.pos
                self.pos += 2
                low = self.hex_digits(4)
                if 0xDC00 <= low <= 0xDFFF:
                    return _single(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
                self.pos = saved
            if 0xD800 <= code <= 0xDFFF:
                raise self.refuse("a lone surrogate escape")
            return _single(code)
        if char.isalnum():
            raise self.refuse(f"the unknown escape \\{char}")
        return _single(ord(char))

    def hex_digits(self, count: int) -> int:
        digits = self.text[self.pos : self.pos + count]
        if len(digits) != count or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise self.refuse("a malformed hex escape")
        self.pos += count
        return int(digits, 16)


def _single(code: int) -> _Set:
    return _Set(((code, code),))


# ------------------------------------------------------------------------------------------ emitting


def _emit(node: _Node) -> str | None:
    """GBNF for `node` over JSON string content; None for the empty language."""
    if isinstance(node, _Set):
        return json_char_set(node.ranges)
    if isinstance(node, _Seq):
        parts = []
        for item in node.items:
            part = _emit(item)
            if part is None:
                return None
            parts.append(part)
        return "(" + " ".join(parts) + ")" if len(parts) > 1 else parts[0] if parts else '""'
    if isinstance(node, _Alt):
        options = [o for o in (_emit(option) for option in node.options) if o is not None]
        return "(" + " | ".join(options) + ")" if options else None
    if isinstance(node, _Repeat):
        inner = _emit(node.item)
        if inner is None:
            return '""' if node.min == 0 else None
        if node.max is None:
            suffix = "*" if node.min == 0 else "+" if node.min == 1 else f"{{{node.min},}}"
        elif node.min == 0 and node.max == 1:
            suffix = "?"
        elif node.min == node.max:
            suffix = f"{{{node.min}}}"
        else:
            suffix = f"{{{node.min},{node.max}}}"
        if not inner.startswith("(") and " " in inner:
            inner = f"({inner})"
        return inner + suffix
    raise GrammarError("an anchor inside a pattern cannot be compiled to a grammar")


def _strip_anchors(option: _Node, pattern: str) -> tuple[bool, _Node, bool]:
    """(anchored at start, the option without its edge anchors, anchored at end)."""
    items = list(option.items) if isinstance(option, _Seq) else [option]
    starts = ends = False
    while items and isinstance(items[0], _Anchor) and items[0].start:
        items.pop(0)
        starts = True
    while items and isinstance(items[-1], _Anchor) and not items[-1].start:
        items.pop()
        ends = True
    for item in items:
        if _has_anchor(item):
            raise GrammarError(
                f"pattern {pattern!r}: an anchor inside the pattern cannot be compiled to a grammar"
            )
    return starts, _Seq(tuple(items)), ends


def _has_anchor(node: _Node) -> bool:
    if isinstance(node, _Anchor):
        return True
    if isinstance(node, _Seq):
        return any(_has_anchor(item) for item in node.items)
    if isinstance(node, _Alt):
        return any(_has_anchor(option) for option in node.options)
    if isinstance(node, _Repeat):
        return _has_anchor(node.item)
    return False


def _top_options(node: _Node) -> list[_Node]:
    if isinstance(node, _Alt):
        return list(node.options)
    return [node]


def pattern_to_gbnf(pattern: str, any_char: str) -> str | None:
    """GBNF for the JSON string content that `pattern` matches somewhere (ECMAScript search semantics);
    `any_char` is the expression of one arbitrary JSON string character. None: nothing matches."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise GrammarError(f"a pattern of {len(pattern)} characters exceeds the limit of {MAX_PATTERN_CHARS}")
    tree = _RegexParser(pattern).parse()
    options = []
    for option in _top_options(tree):
        starts, body, ends = _strip_anchors(option, pattern)
        inner = _emit(body)
        if inner is None:
            continue
        parts = ([] if starts else [f"{any_char}*"]) + [inner] + ([] if ends else [f"{any_char}*"])
        options.append(" ".join(parts))
    if not options:
        return None
    return options[0] if len(options) == 1 else "(" + " | ".join(f"({o})" for o in options) + ")"

