"""What every part of the JSON Schema compiler shares: limits, the base GBNF rules, small GBNF and JSON value
helpers, and `CompilerCore`, the rule book (named rules, shared by body) and the refusal policy."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, overload

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.gbnf_text import GrammarRules, repeat_suffix
from edge_runtime.grammar.grammar import MAX_GRAMMAR_CHARS, Grammar
from edge_runtime.grammar.json_schema.formats import format_rules
from edge_runtime.grammar.json_schema.keywords import TYPES
from edge_runtime.grammar.json_schema.merged_keys import MergedKeys

if TYPE_CHECKING:
    from edge_runtime.grammar.json_schema.refs import SchemaRegistry

JsonLayout = Literal["any", "canonical"]
"""How generated JSON is laid out. "any": up to one space or one newline and 20 spaces after `{`, `[`, `,` and
`:` and before `}` and `]` (rule `ws`), the model's choice. "canonical": exactly Python's `json.dumps` layout,
", " and ": " and nothing else, so every structural token is forced and costs no model step (`json_text`)."""

Resolver = Callable[[str], Any]
"""Fetches a remote schema document by absolute URI (without fragment); never called for local refs."""

MAX_REPEAT = 10_000
MAX_BRANCHES = 256

_RAW_CHAR = "[\\x20-\\x21\\x23-\\x5B\\x5D-\\uD7FF\\uE000-\\U0010FFFF]"
"""A character JSON strings hold unescaped, as a positive class: llama.cpp's negated classes also admit
undecodable byte runs (beyond U+10FFFF, surrogates), which this grammar text must not let through."""

_BASE_RULES = {
    "ws": '( " " | "\\n" " "{0,20} )?',
    "char": (
        _RAW_CHAR + ' | "\\\\" ["\\\\/bfnrt] | "\\\\u" ( [0-9a-cA-CefEF] [0-9a-fA-F]{3}'
        ' | [dD] [0-7] [0-9a-fA-F]{2} ) | "\\\\u" [dD] [89abAB] [0-9a-fA-F]{2} "\\\\u" [dD] [c-fC-F] [0-9a-fA-F]{2}'
    ),
    "key-char": _RAW_CHAR + ' | "\\\\" ["\\\\bfnrt] | "\\\\u00" ( "0" [0-7bef] | "1" [0-9a-f] )',
    "key-wide": "[\\x80-\\uD7FF\\uE000-\\U0010FFFF]",
    "key-tail": 'key-char* "\\""',
    "key-escape": '"\\\\" ( ["\\\\bfnrt] | "u00" ( "0" [0-7bef] | "1" [0-9a-f] ) )',
    "string": '"\\"" char* "\\""',
    "number": '"-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?',
    "integer": '"-"? ( "0" | [1-9] [0-9]* )',
    "boolean": '"true" | "false"',
    "null": '"null"',
    "value": "object-any | array-any | string | number | boolean | null",
    "object-any": '"{" ws ( string ":" ws value ( "," ws string ":" ws value )* ws )? "}"',
    "array-any": '"[" ws ( value ( "," ws value )* ws )? "]"',
}
_CANONICAL_RULES = {
    "object-any": '"{" ( string ": " value ( ", " string ": " value )* )? "}"',
    "array-any": '"[" ( value ( ", " value )* )? "]"',
}
"""The free-form containers in the canonical layout (the other base rules hold no whitespace)."""
_CANONICAL_DEPENDENCIES = {"object-any": ("string", "value"), "array-any": ("value",)}

_BASE_DEPENDENCIES = {
    "string": ("char",),
    "key-tail": ("key-char",),
    "value": ("object-any", "array-any", "string", "number", "boolean", "null"),
    "object-any": ("ws", "string", "value"),
    "array-any": ("ws", "value"),
}

def json_text(value: Any) -> str:
    """`value` as the grammar writes it: ", " and ": " separators, non-ASCII characters kept."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)


def value_key(value: Any) -> Any:
    """A key equal for equal JSON values: 1 and 1.0 are one number, true is not 1."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", Decimal(str(value)).normalize())
    if isinstance(value, list):
        return ("array", tuple(value_key(item) for item in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((key, value_key(item)) for key, item in value.items())))
    return ("other", repr(value))

def alt(options: Sequence[str | None]) -> str | None:
    kept = list(dict.fromkeys(o for o in options if o is not None))
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else "( " + " | ".join(kept) + " )"


def seq(*parts: str | None) -> str | None:
    if any(part is None for part in parts):
        return None
    text = [p for p in parts if p and p != '""']
    return " ".join(text) if text else '""'


def repeat(item: str, low: int, high: int | None) -> str:
    if high is not None and high == 0:
        return '""'
    return f"( {item} ){repeat_suffix(low, high)}"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


STRICT_HINT = '(with "strict": false it is left out and named in the x-unenforced-schema-keywords header)'
"""How a strict refusal ends: what the caller can do about it."""


class CompilerCore(ABC):
    """State of one compile and the rule book every seam writes to. The seams (logic, refs, objects, arrays,
    numbers, strings) are mixins over this core; the methods below marked abstract are how one seam reaches
    another, implemented by the seam named in their docstring."""

    def __init__(
        self, registry: SchemaRegistry, lenient: bool, closed_objects: bool = False, layout: JsonLayout = "any"
    ) -> None:
        self.registry = registry
        self.lenient = lenient
        self.closed_objects = closed_objects
        self.layout = layout
        canonical = layout == "canonical"
        self.colon = '": "' if canonical else '":" ws'
        """Between a key and its value."""
        self.comma = '", "' if canonical else '"," ws'
        """Between two members or items."""
        self._pad = "" if canonical else " ws"
        self.rules: dict[str, str] = {}
        self.bodies: dict[str, str] = {}
        self.ref_rules: dict[int, str] = {}
        self.sub_grammars: dict[str, Grammar] = {}
        """`sub_grammar`'s memo, by the sub-schema's JSON."""
        self.exprs: dict[object, str | None] = {}
        """`expr`'s memo, by the schema's `merged_keys` key."""
        self.flattened: dict[object, Any] = {}
        """`flatten`'s memo, by the schema's `merged_keys` key."""
        self.keys_not_in: dict[tuple[str, ...], str] = {}
        """`key_not_in`'s memo, by the declared names."""
        self.key_nodes: dict[tuple[str, ...], str] = {}
        """`key_node`'s memo, by the suffixes of the names below a trie node."""
        self.key_others: dict[tuple[str, ...], str] = {}
        """`key_node`'s deviation rule per set of next characters ("" when every character is one of them)."""
        self.chain_steps: dict[str, str] = {}
        """`key_chain`'s text of a node before its rest, per next character."""
        self.merged_keys = MergedKeys()
        self.unenforced: list[str] = []
        self.counter = 0
        self.merge_depth = 0
        self.written = 0
        """Characters of the rules made by rule() so far: a lower bound of the grammar's length."""
        self.expr_calls = 0
        self.automaton_states = 0
        self.made: dict[tuple[Any, ...], str | None] = {}
        """Rules already written for a string automaton, by what it says (merges meet the same string
        constraints many times)."""

    # -------------------------------------------------------------------------------- rules

    def use(self, name: str) -> str:
        """A base or format rule, defined on first use with what it needs."""
        if name in self.rules:
            return name
        if self.layout == "canonical" and name in _CANONICAL_RULES:
            self.rules[name] = _CANONICAL_RULES[name]
            for needed in _CANONICAL_DEPENDENCIES[name]:
                self.use(needed)
        elif name in _BASE_RULES:
            self.rules[name] = _BASE_RULES[name]
            for needed in _BASE_DEPENDENCIES.get(name, ()):
                self.use(needed)
        else:
            for rule, body in format_rules(name).items():
                self.rules.setdefault(rule, body)
        return name

    def use_spacing(self) -> None:
        """Define what `colon`, `comma` and `enclosed` write in this layout (rule `ws`, or nothing)."""
        if self.layout == "any":
            self.use("ws")

    def enclosed(self, brackets: str, inner: str = "") -> str:
        """`inner` (GBNF; "" for an empty container) between `brackets` ("{}" or "[]"), with the layout's
        whitespace inside them."""
        self.use_spacing()
        left, right, pad = f'"{brackets[0]}"', f'"{brackets[1]}"', self._pad
        return f"{left}{pad} {inner}{pad} {right}" if inner else f"{left}{pad} {right}"

    @overload
    def rule(self, hint: str, body: str) -> str: ...

    @overload
    def rule(self, hint: str, body: str | None) -> str | None: ...

    def rule(self, hint: str, body: str | None) -> str | None:
        """A named rule for `body`, shared with any earlier rule of the same body."""
        if body is None:
            return None
        if body in self.bodies:
            return self.bodies[body]
        self.counter += 1
        name = f"{hint}-{self.counter}"
        self.rules[name] = body
        self.bodies[body] = name
        self.written += len(name) + len(body) + 5
        if self.written > MAX_GRAMMAR_CHARS:  # it can only grow: refused now, not after the whole compile
            raise GrammarError(f"the grammar is over {MAX_GRAMMAR_CHARS:,} characters long; that is the limit")
        return name

    def new_name(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}-{self.counter}"

    def grammar_rules(self, root: str) -> GrammarRules:
        """The rules written, `root` (with body `root`) first."""
        return [("root", root), *self.rules.items()]

    # -------------------------------------------------------------------------------- refusals

    def unenforceable(self, keyword: str, pointer: str, why: str = "") -> None:
        where = f"{keyword} at {pointer}"
        if not self.lenient:
            reason = f": {why.removesuffix(' ' + STRICT_HINT)}" if why else ""  # a nested refusal says it once
            raise GrammarError(
                f"JSON Schema keyword '{keyword}' at '{pointer}' cannot be enforced by a grammar{reason} {STRICT_HINT}"
            )
        if where not in self.unenforced:
            self.unenforced.append(where)

    @staticmethod
    def invalid(pointer: str, what: str) -> GrammarError:
        return GrammarError(f"invalid schema at '{pointer}': {what}")

    def type_names(self, declared: Any, pointer: str) -> list[Any]:
        """The names of a `type` keyword, refused as an invalid schema when one is not a JSON Schema type."""
        names = declared if isinstance(declared, list) else [declared]
        for name in names:
            if not isinstance(name, str) or name not in TYPES:
                raise self.invalid(pointer, f"unknown type {name!r}")
        return names

    def count(self, schema: dict[str, Any], key: str, pointer: str, default: int | None) -> Any:
        if key not in schema:
            return default
        value = schema[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
            raise self.invalid(pointer, f"{key} must be a non-negative integer")
        return int(value)

    # -------------------------------------------------------------------------------- across seams

    @abstractmethod
    def expr(self, schema: Any, pointer: str) -> str | None:
        """GBNF expression of the values `schema` accepts; None when it accepts none (compiler)."""

    @abstractmethod
    def declared_types(self, schema: dict[str, Any], pointer: str) -> list[str]:
        """The JSON types `schema` allows, in TYPES order (compiler)."""

    @abstractmethod
    def literal(self, value: Any) -> str:
        """GBNF for one JSON value in any layout the grammar allows (compiler)."""

    @abstractmethod
    def sub_grammar(self, schema: dict[str, Any], pointer: str) -> Grammar:
        """The grammar of `schema` alone (compiler)."""

    @abstractmethod
    def resolved(self, schema: Any, pointer: str) -> Any:
        """`schema` without $ref or allOf at its top (logic)."""

    @abstractmethod
    def flatten(self, schema: dict[str, Any], pointer: str) -> Any:
        """`schema` with its $ref and allOf merged into it (logic)."""

    @abstractmethod
    def finite_values(self, schema: dict[str, Any]) -> list[Any] | None:
        """The values `const` and `enum` allow together, or None (logic)."""

    @abstractmethod
    def key_not_in(self, names: list[str]) -> str:
        """A JSON key (canonical form, quotes included) that is none of `names` (objects)."""
