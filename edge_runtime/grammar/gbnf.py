"""Parser of llama.cpp's GBNF dialect into the code-point syntax tree of `syntax.py`.

Follows llama.cpp's grammar-parser: a rule ends at a newline unless inside parentheses or after `::=` or `|`;
`#` starts a comment; rule names are ASCII letters, digits and `-`.
"""

from __future__ import annotations

import bisect
import re

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.gbnf_text import GrammarRules
from edge_runtime.grammar.syntax import (
    MAX_CODE_POINT,
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

MAX_REPETITION = 10_000
"""Bound on the numbers in `{m,n}`; each unit of it costs a helper rule or an element."""

_CHAR_ESCAPES = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-"}
_HEX_ESCAPE_DIGITS = {"x": 2, "u": 4, "U": 8}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


_NAME = re.compile(r"[a-zA-Z0-9-]+")
_SPACE = re.compile(r"(?:[ \t]+|#[^\r\n]*)+")
_SPACE_OR_NEWLINE = re.compile(r"(?:[ \t\r\n]+|#[^\r\n]*)+")
_PLAIN_LITERAL = re.compile(r'"([^"\\]*)"')
"""A literal without escapes, the common case: its text is the match (no character-by-character parse)."""
_SURROGATE = re.compile("[\ud800-\udfff]")
_CLASS_TEXT = re.compile(r"\[(?:\\[^\r\n]|[^\]\\])*\]")
"""A whole character class; its parse is memoized by this text, which grammars compiled from schemas repeat."""
_PARSED_CLASSES: dict[str, CharClass] = {}
_MAX_PARSED_CLASSES = 4096


_WORD_CHARS = frozenset("-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def parse_gbnf(text: str) -> GrammarSyntax:
    """Parse and check a grammar: unique rule names, every reference defined, a `root` rule."""
    parser = _Parser(text)
    rules = parser.parse()
    defined = {rule.name for rule in rules}
    for ref in parser.refs:
        if ref.name not in defined:
            raise GrammarError(f"undefined rule '{ref.name}'", ref.line, ref.column)
    return _with_root(rules, defined)


def parse_gbnf_rules(rules: GrammarRules) -> GrammarSyntax:
    """The syntax of `rules_text(rules)`, parsed rule by rule: what `parse_gbnf` of that text returns but
    for positions (a rule's line is its index + 1; a position inside a body is on the body's own line 1).
    Compiled grammars are lowered in C (grammar/native_lowering.py); this is the path that explains what the C
    side gives up on."""
    parsed: list[Rule] = []
    defined: set[str] = set()
    references: list[tuple[int, tuple[RuleRef, ...]]] = []
    for index, (name, body) in enumerate(rules):
        line = index + 1
        if _NAME.fullmatch(name) is None:
            raise GrammarError(f"expecting a rule name, found '{name}'", line, 1)
        if name in defined:
            raise GrammarError(f"rule '{name}' is defined twice", line, 1)
        defined.add(name)
        found = _parse_body(body, line)
        parsed.append(Rule(name, found[0], line, 1))
        references.append((line, found[1]))
    for line, refs in references:
        for ref in refs:
            if ref.name not in defined:
                raise GrammarError(f"undefined rule '{ref.name}'", line, ref.column)
    return _with_root(parsed, defined)


def _parse_body(body: str, line: int) -> tuple[Alternatives, tuple[RuleRef, ...]]:
    parser = _Parser(body)
    try:
        parser.skip_space(True)
        alternatives = parser.parse_alternatives(nested=False)
        if parser.pos < len(body):
            raise parser.error(f"expecting newline or end, found '{parser.peek()}'")
    except GrammarError as exc:
        raise GrammarError(exc.reason, line, exc.column) from None
    return alternatives, tuple(parser.refs)


def _with_root(rules: list[Rule], defined: set[str]) -> GrammarSyntax:
    if "root" not in defined:
        raise GrammarError("the grammar has no 'root' rule")
    return GrammarSyntax(tuple(rules))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line_starts = [0] + [match.end() for match in re.finditer("\n", text)]
        self.refs: list[RuleRef] = []
        """Every rule reference, in text order (checked against the defined names once all are parsed)."""

    def line_column(self, at: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, at)
        return line, at - self.line_starts[line - 1] + 1

    def error(self, reason: str, pos: int | None = None) -> GrammarError:
        line, column = self.line_column(self.pos if pos is None else pos)
        return GrammarError(reason, line, column)

    def peek(self, offset: int = 0) -> str:
        at = self.pos + offset
        return self.text[at] if at < len(self.text) else ""

    def skip_space(self, newline_ok: bool) -> None:
        found = (_SPACE_OR_NEWLINE if newline_ok else _SPACE).match(self.text, self.pos)
        if found:
            self.pos = found.end()

    def parse(self) -> list[Rule]:
        rules: list[Rule] = []
        seen: set[str] = set()
        self.skip_space(True)
        while self.pos < len(self.text):
            rule = self.parse_rule()
            if rule.name in seen:
                raise GrammarError(f"rule '{rule.name}' is defined twice", rule.line, rule.column)
            seen.add(rule.name)
            rules.append(rule)
        return rules

    def parse_rule(self) -> Rule:
        start = self.pos
        name = self.parse_name()
        self.skip_space(False)
        if not self.text.startswith("::=", self.pos):
            raise self.error("expecting '::='")
        self.pos += 3
        self.skip_space(True)
        body = self.parse_alternatives(nested=False)
        if self.peek() == "\r":
            self.pos += 2 if self.peek(1) == "\n" else 1
        elif self.peek() == "\n":
            self.pos += 1
        elif self.pos < len(self.text):
            raise self.error(f"expecting newline or end, found '{self.peek()}'")
        self.skip_space(True)
        return Rule(name, body, *self.line_column(start))

    def parse_name(self) -> str:
        found = _NAME.match(self.text, self.pos)
        if found is None:
            raise self.error(f"expecting a rule name, found '{self.peek() or 'end of input'}'")
        self.pos = found.end()
        return found.group()

    def parse_alternatives(self, nested: bool) -> Alternatives:
        options = [self.parse_sequence(nested)]
        while self.peek() == "|":
            self.pos += 1
            self.skip_space(True)
            options.append(self.parse_sequence(nested))
        return Alternatives(tuple(options))

    def parse_sequence(self, nested: bool) -> Sequence:
        items: list[Node] = []
        text = self.text
        space = _SPACE_OR_NEWLINE if nested else _SPACE
        while self.pos < len(text):
            start = self.pos
            char = text[start]
            if char == '"':
                items.append(self.parse_literal())
            elif char == "[":
                items.append(self.parse_class())
            elif char == ".":
                self.pos += 1
                items.append(CharClass((), negated=True))
            elif char in _WORD_CHARS:
                name = self.parse_name()
                ref = RuleRef(name, *self.line_column(start))
                self.refs.append(ref)
                items.append(ref)
            elif char == "(":
                self.pos += 1
                self.skip_space(True)
                group = self.parse_alternatives(nested=True)
                if self.peek() != ")":
                    raise self.error("expecting ')'")
                self.pos += 1
                items.append(group)
            elif char == "<" or (char == "!" and self.peek(1) == "<"):
                items.append(self.parse_token())
            elif char in "*+?{":
                if not items:
                    raise self.error(f"expecting an item before '{char}'")
                items[-1] = self.parse_repetition(items[-1])
            else:
                break
            skipped = space.match(text, self.pos)
            if skipped:
                self.pos = skipped.end()
        return Sequence(tuple(items))

    def parse_repetition(self, item: Node) -> Repeat:
        char = self.text[self.pos]
        self.pos += 1
        if char == "*":
            return Repeat(item, 0, None)
        if char == "+":
            return Repeat(item, 1, None)
        if char == "?":
            return Repeat(item, 0, 1)
        brace = self.pos - 1
        self.skip_space(True)
        low = self.parse_int()
        self.skip_space(True)
        high: int | None
        if self.peek() == "}":
            high = low
        elif self.peek() == ",":
            self.pos += 1
            self.skip_space(True)
            if self.peek() == "}":
                high = None
            else:
                high = self.parse_int()
                self.skip_space(True)
                if self.peek() != "}":
                    raise self.error("expecting '}'")
        else:
            raise self.error("expecting ',' or '}'")
        self.pos += 1
        if high is not None and high < low:
            raise self.error(f"repetition {{{low},{high}}} has its maximum below its minimum", brace)
        return Repeat(item, low, high)

    def parse_int(self) -> int:
        start = self.pos
        while self.peek().isdigit() and self.peek().isascii():
            self.pos += 1
        if self.pos == start:
            raise self.error("expecting an integer")
        value = int(self.text[start : self.pos])
        if value > MAX_REPETITION:
            raise self.error(f"repetition count {value} exceeds the limit of {MAX_REPETITION}", start)
        return value

    def parse_token(self) -> TokenRef:
        negated = self.peek() == "!"
        if negated:
            self.pos += 1
        if self.peek(1) != "[":
            raise self.error("token references by text need a vocabulary; write the token id as <[id]>")
        self.pos += 2
        start = self.pos
        while self.peek().isdigit() and self.peek().isascii():
            self.pos += 1
        if self.pos == start or self.text[self.pos : self.pos + 2] != "]>":
            raise self.error("expecting a token id as <[digits]>")
        token_id = int(self.text[start : self.pos])
        self.pos += 2
        return TokenRef(token_id, negated)

    def parse_literal(self) -> Literal:
        plain = _PLAIN_LITERAL.match(self.text, self.pos)
        if plain is not None and not _SURROGATE.search(plain.group(1)):
            self.pos = plain.end()
            return Literal(plain.group(1))
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text) and self.text[self.pos] != '"':
            chars.append(chr(self.parse_char()))
        if self.pos >= len(self.text):
            raise self.error("unterminated string literal", start)
        self.pos += 1
        return Literal("".join(chars))

    def parse_class(self) -> CharClass:
        whole = _CLASS_TEXT.match(self.text, self.pos)
        if whole is None:
            return self.parse_class_text()
        found = _PARSED_CLASSES.get(whole.group())
        if found is None:
            found = self.parse_class_text()
            if len(_PARSED_CLASSES) < _MAX_PARSED_CLASSES:
                _PARSED_CLASSES[whole.group()] = found
        self.pos = whole.end()
        return found

    def parse_class_text(self) -> CharClass:
        start = self.pos
        self.pos += 1
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        while self.pos < len(self.text) and self.text[self.pos] != "]":
            char_start = self.pos
            low = self.parse_char()
            high = low
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.pos += 1
                high = self.parse_char()
                if high < low:
                    raise self.error("character range is out of order", char_start)
            ranges.append((low, high))
        if self.pos >= len(self.text):
            raise self.error("unterminated character class", start)
        self.pos += 1
        return CharClass(tuple(ranges), negated)

    def parse_char(self) -> int:
        start = self.pos
        char = self.text[self.pos]
        if char != "\\":
            self.pos += 1
            return self.checked_code_point(ord(char), start)
        escape = self.peek(1)
        if escape in _HEX_ESCAPE_DIGITS:
            size = _HEX_ESCAPE_DIGITS[escape]
            digits = self.text[self.pos + 2 : self.pos + 2 + size]
            if len(digits) != size or not all(d in _HEX_DIGITS for d in digits):
                raise self.error(f"expecting {size} hex digits after \\{escape}", start)
            self.pos += 2 + size
            return self.checked_code_point(int(digits, 16), start)
        if escape in _CHAR_ESCAPES:
            self.pos += 2
            return ord(_CHAR_ESCAPES[escape])
        if not escape:
            raise self.error("unexpected end of input after '\\'", start)
        raise self.error(f"unknown escape '\\{escape}'", start)

    def checked_code_point(self, value: int, start: int) -> int:
        if value > MAX_CODE_POINT:
            raise self.error(f"code point U+{value:X} is beyond U+10FFFF", start)
        if 0xD800 <= value <= 0xDFFF:
            raise self.error(f"code point U+{value:04X} is a surrogate and has no UTF-8 form", start)
        return value
