"""JSON Schema (draft 2020-12) compiled to llama.cpp GBNF text, then to a `Grammar`.

The grammar generates JSON in one family of layouts:
- Whitespace is bounded: after `{`, `[`, `,` and `:` and before `}` and `]` there may be nothing, one
  space, or one newline and up to 20 spaces (rule `ws`); nothing before or after the value. A model can
  pretty-print but never emit endless whitespace.
- Object properties come in schema order (`properties`, then `required` names that `properties` lacks;
  with allOf/$ref, the schema's own properties, then each branch's), optional ones skippable; extra properties (allowed by default, as JSON Schema says, unless
  `additionalProperties` says otherwise) come after them, with keys that differ from every declared name
  and written in one canonical form (controls as `\\n` or `\\u00xx`, nothing else escaped but `"` and `\\`).
  With `closed_objects=True` (what the API routes ask for) an object that declares `properties` and says
  nothing of `additionalProperties` or `unevaluatedProperties` gets no extra properties: a model otherwise
  invents keys until max_tokens. The output stays valid under the schema; `"additionalProperties": true`
  opens an object again.
  Valid JSON with declared properties in another order is therefore rejected: a narrowing, never a widening.
- Integers are exact digit-range grammars of any width; `-0` is zero. Numbers with bounds (or a
  multipleOf) are written without exponent; `1.0` is not generated for an integer, but an enum or const
  number matches every decimal spelling of its value. uniqueItems is enforced when the items are at most 8
  known values (one rule per subset used). multipleOf is exact without bounds or with zero as the only bound
  (a remainder automaton over the digits, for steps of up to 1,000 remainder states) and between bounds
  (steps 10^-k by fraction digit count, others by listing up to 1,000 multiples).

`dependentSchemas` compiles as a conditional on its property being present. `not` and `if`/`then`/`else`
compile when the negated schema's complement can be written as a schema
(schema_negation: types, bounds, lengths and counts, consts and enums of scalars, required, properties,
anyOf, double negation); a string other than some given ones is written directly (the canonical spelling of
a string unequal to each). Otherwise they are refused like any keyword the grammar cannot enforce.

A keyword the grammar cannot enforce raises `GrammarError` naming it and its JSON pointer, unless
`lenient=True`, which leaves it out and lists it in `Grammar.unenforced` ("keyword at pointer").
Formats the specification defines but no grammar here checks are refused the same way; formats it does not
define are annotations. Annotations (`title`, `description`, `default`, `examples`, ...) and unknown
keywords are ignored, as the specification says.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from decimal import Decimal
from threading import Lock
from typing import Any, overload

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.grammar import MAX_GRAMMAR_CHARS, Grammar, compile_gbnf
from edge_runtime.grammar.json_schema_keywords import ANNOTATIONS, ASSERTIONS, TYPES
from edge_runtime.grammar.char_dfa import CharDfa, dfa_to_gbnf
from edge_runtime.grammar.schema_key_classes import (
    PatternProperty,
    key_classes,
    pattern_properties,
    property_names_dfa,
)
from edge_runtime.grammar.schema_formats import FORMAT_RULES, UNSUPPORTED_FORMATS, format_rules
from edge_runtime.grammar.schema_negation import (
    conditional,
    negation,
    string_exclusion,
    without_dependent_schemas,
    without_not,
)
from edge_runtime.grammar.schema_numbers import decimal_range, integer_range
from edge_runtime.grammar.schema_refs import SchemaRegistry
from edge_runtime.grammar.schema_regex import complement, json_char_set, pattern_to_gbnf
from edge_runtime.grammar.schema_strings import string_dfa

Resolver = Callable[[str], Any]
"""Fetches a remote schema document by absolute URI (without fragment); never called for local refs."""

MAX_REPEAT = 10_000
MAX_BRANCHES = 256
MAX_DEPENDENCIES = 8
"""dependentRequired triggers per object (each one multiplies the object's rules in the worst case)."""
MAX_UNIQUE_DOMAIN = 8
"""Most distinct item values for which uniqueItems is enforced (one rule per subset of them used)."""
MAX_MODULUS = 1000
"""Largest whole multipleOf step compiled to a remainder automaton (one rule per remainder)."""
MAX_LISTED_MULTIPLES = 1000
"""Most multiples of a step between two bounds that a grammar lists one by one."""
MAX_COUNTING_STATES = 4096
"""Bound on (declared properties x property counts) rules for minProperties/maxProperties."""

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
    "string": '"\\"" char* "\\""',
    "number": '"-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?',
    "integer": '"-"? ( "0" | [1-9] [0-9]* )',
    "boolean": '"true" | "false"',
    "null": '"null"',
    "value": "object-any | array-any | string | number | boolean | null",
    "object-any": '"{" ws ( string ":" ws value ( "," ws string ":" ws value )* ws )? "}"',
    "array-any": '"[" ws ( value ( "," ws value )* ws )? "]"',
}
_BASE_DEPENDENCIES = {
    "string": ("char",),
    "value": ("object-any", "array-any", "string", "number", "boolean", "null"),
    "object-any": ("ws", "string", "value"),
    "array-any": ("ws", "value"),
}

def _gbnf_literal(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02X}")
        elif 0x80 <= code <= 0x9F or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def json_text(value: Any) -> str:
    """`value` as the grammar writes it: ", " and ": " separators, non-ASCII characters kept."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)


def _value_key(value: Any) -> Any:
    """A key equal for equal JSON values: 1 and 1.0 are one number, true is not 1."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", Decimal(str(value)).normalize())
    if isinstance(value, list):
        return ("array", tuple(_value_key(item) for item in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((key, _value_key(item)) for key, item in value.items())))
    return ("other", repr(value))


_MODIFIERS = {"minContains": "contains", "maxContains": "contains", "then": "if", "else": "if"}
"""Keywords that act only beside another in the same schema object (and do nothing without it)."""


def _without_orphans(schema: Any) -> Any:
    """`schema` without modifiers whose keyword is absent, and without an `if` that has neither `then` nor
    `else`: merged into another schema object (allOf, $ref) they would act with that object's keywords, which
    the specification says they never see."""
    if not isinstance(schema, dict):
        return schema
    lone_if = "if" in schema and "then" not in schema and "else" not in schema
    if not lone_if and not any(key in schema and base not in schema for key, base in _MODIFIERS.items()):
        return schema
    return {
        key: value
        for key, value in schema.items()
        if not (key == "if" and lone_if) and (key not in _MODIFIERS or _MODIFIERS[key] in schema)
    }


def _may_be_string(schema: dict[str, Any]) -> bool:
    declared = schema.get("type", "string")
    return "string" in (declared if isinstance(declared, list) else [declared])


def _excludes_strings(schema: dict[str, Any]) -> bool:
    """A string schema whose `not` lists strings: string() writes it (a string unequal to each), no rewrite."""
    return schema.get("type") in ("string", ["string"]) and string_exclusion(schema.get("not")) is not None


def _alt(options: Sequence[str | None]) -> str | None:
    kept = list(dict.fromkeys(o for o in options if o is not None))
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else "( " + " | ".join(kept) + " )"


def _seq(*parts: str | None) -> str | None:
    if any(part is None for part in parts):
        return None
    text = [p for p in parts if p and p != '""']
    return " ".join(text) if text else '""'


def _repeat(item: str, low: int, high: int | None) -> str:
    if high is not None and high == 0:
        return '""'
    if high is None:
        suffix = "*" if low == 0 else "+" if low == 1 else f"{{{low},}}"
    elif low == 0 and high == 1:
        suffix = "?"
    elif low == high:
        suffix = f"{{{low}}}"
    else:
        suffix = f"{{{low},{high}}}"
    return f"( {item} ){suffix}"


def _json_type(value: Any) -> str:
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


@dataclass(frozen=True)
class _Member:
    """A declared property: its `"name": value` rule (None when no value is allowed) and whether required."""

    name: str
    kv: str | None
    required: bool


@dataclass(frozen=True)
class _Counts:
    """minProperties / maxProperties (None: no maximum)."""

    low: int
    high: int | None


class _KeyTrie:
    """Canonical key encodings of the declared property names, by JSON string unit."""

    def __init__(self) -> None:
        self.children: dict[str, _KeyTrie] = {}
        self.terminal = False

    def add(self, units: list[str]) -> None:
        node = self
        for unit in units:
            node = node.children.setdefault(unit, _KeyTrie())
        node.terminal = True


def _key_units(name: str) -> list[str]:
    """One unit per character of `name` as it is written in a canonical JSON key."""
    return [json.dumps(char, ensure_ascii=False)[1:-1] for char in name]


_KEY_ESCAPES = [json.dumps(chr(code))[1:-1] for code in range(0x20)] + ['\\"', "\\\\"]


class _SchemaCompiler:
    def __init__(self, registry: SchemaRegistry, lenient: bool, closed_objects: bool = False) -> None:
        self.registry = registry
        self.lenient = lenient
        self.closed_objects = closed_objects
        self.rules: dict[str, str] = {}
        self.bodies: dict[str, str] = {}
        self.ref_rules: dict[int, str] = {}
        self.unenforced: list[str] = []
        self.counter = 0
        self.merge_depth = 0

    # -------------------------------------------------------------------------------- rules

    def use(self, name: str) -> str:
        """A base or format rule, defined on first use with what it needs."""
        if name in self.rules:
            return name
        if name in _BASE_RULES:
            self.rules[name] = _BASE_RULES[name]
            for needed in _BASE_DEPENDENCIES.get(name, ()):
                self.use(needed)
        else:
            for rule, body in format_rules(name).items():
                self.rules.setdefault(rule, body)
        return name

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
        return name

    def new_name(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}-{self.counter}"

    def gbnf(self, root: str) -> str:
        lines = [f"root ::= {root}"] + [f"{name} ::= {body}" for name, body in self.rules.items()]
        return "\n".join(lines) + "\n"

    # -------------------------------------------------------------------------------- refusals

    def unenforceable(self, keyword: str, pointer: str, why: str = "") -> None:
        where = f"{keyword} at {pointer}"
        if not self.lenient:
            reason = f": {why}" if why else ""
            raise GrammarError(
                f"JSON Schema keyword '{keyword}' at '{pointer}' cannot be enforced by a grammar{reason} "
                '(with "strict": false it is left out and named in the x-unenforced-schema-keywords header)'
            )
        if where not in self.unenforced:
            self.unenforced.append(where)

    @staticmethod
    def invalid(pointer: str, what: str) -> GrammarError:
        return GrammarError(f"invalid schema at '{pointer}': {what}")

    # -------------------------------------------------------------------------------- schemas

    def expr(self, schema: Any, pointer: str) -> str | None:
        """GBNF expression of the values `schema` accepts; None when it accepts none."""
        if schema is True:
            return self.use("value")
        if schema is False:
            return None
        if not isinstance(schema, dict):
            raise self.invalid(pointer, "a schema must be an object or a boolean")
        rewritten = self.without_logic(schema, pointer)
        if rewritten is not schema:
            return self.expr(rewritten, pointer)
        if "$ref" in schema:
            return self.with_ref(schema, pointer)
        if "allOf" in schema:
            return self.expr(self.flatten(schema, pointer), pointer)
        if "anyOf" in schema or "oneOf" in schema:
            return self.alternatives(schema, pointer)
        return self.plain(schema, pointer)

    def without_logic(self, schema: dict[str, Any], pointer: str) -> dict[str, Any]:
        """`schema` with `dependentSchemas`, `if`/`then`/`else` and `not` written as anyOf/allOf where their
        negation can be written (see schema_negation); what cannot be stays, for plain() to refuse by name."""
        def resolve(sub: Any) -> Any:
            return self.resolved(sub, pointer)

        if any(schema.get(key, True) not in (True, {}) for key in ("unevaluatedProperties", "unevaluatedItems")):
            return schema  # what `not` and a failed `if` evaluate must not count as evaluated; allOf's would
        out = schema
        if out.get("dependentSchemas") or isinstance(out.get("dependencies"), dict):
            out = without_dependent_schemas(out, resolve)
        if "if" in out and ("then" in out or "else" in out):
            out = conditional(out, resolve) or out
        if "not" in out and string_exclusion(out["not"]) is not None and not _may_be_string(out):
            out = {key: value for key, value in out.items() if key != "not"}  # it only excludes strings
        if "not" in out and not _excludes_strings(out):
            out = without_not(out, resolve) or out
        return out

    def with_ref(self, schema: dict[str, Any], pointer: str) -> str | None:
        ref = schema["$ref"]
        if not isinstance(ref, str):
            raise self.invalid(pointer, "$ref must be a string")
        rest = {k: v for k, v in schema.items() if k != "$ref" and k not in ANNOTATIONS}
        if rest:
            return self.expr(self.flatten(schema, pointer), pointer)
        target = self.registry.resolve(ref, pointer)
        if isinstance(target, bool):
            return self.expr(target, pointer)
        key = id(target)
        if key in self.ref_rules:
            return self.ref_rules[key]
        name = self.new_name("ref")
        self.ref_rules[key] = name
        body = self.expr(target, ref)
        self.rules[name] = body if body is not None else "[^\\x00-\\U0010FFFF]"
        return name

    # -------------------------------------------------------------------------------- allOf

    def resolved(self, schema: Any, pointer: str) -> Any:
        """`schema` without $ref or allOf at its top: those are merged into one schema."""
        if isinstance(schema, dict) and ("$ref" in schema or "allOf" in schema):
            return self.flatten(schema, pointer)
        return schema

    def flatten(self, schema: dict[str, Any], pointer: str) -> Any:
        self.merge_depth += 1
        try:
            if self.merge_depth > 32:
                raise GrammarError(f"schema at '{pointer}': $ref/allOf nest too deep (a reference cycle?)")
            merged: Any = _without_orphans({k: v for k, v in schema.items() if k not in ("$ref", "allOf")})
            parts: list[tuple[Any, str]] = []
            if "$ref" in schema:
                parts.append((self.registry.resolve(schema["$ref"], pointer), schema["$ref"]))
            branches = schema.get("allOf", [])
            if not isinstance(branches, list) or not branches and "allOf" in schema:
                raise self.invalid(pointer, "allOf must be a non-empty array")
            parts.extend((branch, f"{pointer}/allOf/{index}") for index, branch in enumerate(branches))
            for part, where in parts:
                branch = _without_orphans(self.resolved(part, where))
                for keyword in ("unevaluatedProperties", "unevaluatedItems"):
                    if isinstance(branch, dict) and branch.get(keyword, True) not in (True, {}):
                        self.unenforceable(keyword, where, "inside an applicator it sees only its own branch")
                merged = self.merge(merged, branch, pointer)
            return merged
        finally:
            self.merge_depth -= 1

    def merge(self, a: Any, b: Any, pointer: str) -> Any:
        """One schema accepting exactly what both accept (refusing what cannot be merged)."""
        if a is False or b is False:
            return False
        if a is True or a == {}:
            return b
        if b is True or b == {}:
            return a
        if not isinstance(a, dict) or not isinstance(b, dict):
            raise self.invalid(pointer, "a schema must be an object or a boolean")
        out: dict[str, Any] = {k: v for k, v in a.items() if k not in ANNOTATIONS}
        for key, value in b.items():
            if key in ANNOTATIONS:
                continue
            if key not in out:
                out[key] = value
                continue
            mine = out[key]
            if key == "type":
                mine_set = set(mine) if isinstance(mine, list) else {mine}
                theirs = set(value) if isinstance(value, list) else {value}
                both = (mine_set & theirs) | (
                    {"integer"}
                    if ("integer" in mine_set and "number" in theirs)
                    or ("number" in mine_set and "integer" in theirs)
                    else set()
                )
                out[key] = [t for t in TYPES if t in both]
            elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"):
                out[key] = max(mine, value)
            elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"):
                out[key] = min(mine, value)
            elif key == "required":
                out[key] = list(dict.fromkeys(list(mine) + list(value)))
            elif key in ("enum", "const"):
                continue
            elif key in ("additionalProperties", "items", "propertyNames"):
                out[key] = {"allOf": [mine, value]} if mine != value else mine
            elif key == "not":
                excluded = [string_exclusion(x) for x in (mine, value)]
                if excluded[0] is not None and excluded[1] is not None:
                    out[key] = {"enum": list(dict.fromkeys(excluded[0] + excluded[1]))}  # string() writes it
                else:
                    out[key] = {"anyOf": [mine, value]} if mine != value else mine
            elif key == "properties" or key == "prefixItems":
                continue
            elif key == "anyOf":
                out[key] = [{"allOf": [x, y]} for x in mine for y in value]
                if len(out[key]) > MAX_BRANCHES:
                    raise GrammarError(
                        f"schema at '{pointer}': allOf of anyOf branches has too many combinations"
                    )
            elif mine != value and (key in ASSERTIONS or key == "oneOf"):
                self.unenforceable("allOf", pointer, f"two different '{key}' cannot be combined")
        for x, y in ((a, b), (b, a)):
            if x.get("patternProperties") and y.get("additionalProperties", True) not in (True, {}):
                self.unenforceable("allOf", pointer, "patternProperties beside another branch's additionalProperties")
        value_sets = [self.finite_values(x) for x in (a, b)]
        if any(values is not None for values in value_sets):
            out.pop("const", None)
            known = [values for values in value_sets if values is not None]
            common = known[0]
            for values in known[1:]:
                keys = {_value_key(v) for v in values}
                common = [v for v in common if _value_key(v) in keys]
            out["enum"] = common
        self.merge_properties(a, b, out)
        self.merge_prefix_items(a, b, out)
        return out

    @staticmethod
    def merge_properties(a: dict[str, Any], b: dict[str, Any], out: dict[str, Any]) -> None:
        if "properties" not in a and "properties" not in b:
            return
        props_a = a.get("properties") or {}
        props_b = b.get("properties") or {}
        extra_a = a.get("additionalProperties", True)
        extra_b = b.get("additionalProperties", True)
        merged: dict[str, Any] = {}
        for name in list(props_a) + [n for n in props_b if n not in props_a]:
            left = props_a.get(name, extra_a)
            right = props_b.get(name, extra_b)
            merged[name] = (
                left
                if right is True or right == left
                else right
                if left is True
                else {"allOf": [left, right]}
            )
        out["properties"] = merged

    @staticmethod
    def merge_prefix_items(a: dict[str, Any], b: dict[str, Any], out: dict[str, Any]) -> None:
        if "prefixItems" not in a and "prefixItems" not in b:
            return
        left, right = a.get("prefixItems") or [], b.get("prefixItems") or []
        rest_a, rest_b = a.get("items", True), b.get("items", True)
        merged = []
        for index in range(max(len(left), len(right))):
            x = left[index] if index < len(left) else rest_a
            y = right[index] if index < len(right) else rest_b
            merged.append(x if y is True else y if x is True else {"allOf": [x, y]})
        out["prefixItems"] = merged

    # -------------------------------------------------------------------------------- anyOf / oneOf

    def alternatives(self, schema: dict[str, Any], pointer: str) -> str | None:
        keyword = "anyOf" if "anyOf" in schema else "oneOf"
        branches = schema[keyword]
        if not isinstance(branches, list) or not branches:
            raise self.invalid(pointer, f"{keyword} must be a non-empty array")
        base = {k: v for k, v in schema.items() if k != keyword}
        has_base = any(k not in ANNOTATIONS for k in base)
        if keyword == "oneOf":
            branches = self.exclusive(branches, pointer)
        options = []
        for index, branch in enumerate(branches):
            where = f"{pointer}/{keyword}/{index}"
            combined = {**base, "allOf": [*base.get("allOf", []), branch]} if has_base else branch
            options.append(self.expr(combined, where))
        return self.rule("any", _alt(options))

    def exclusive(self, branches: list[Any], pointer: str) -> list[Any]:
        """oneOf's branches made mutually exclusive: as they are when no two can overlap, else each one
        without the values of the branches it may overlap (branch i and not branch j, the negation written
        by schema_negation); refused by name when such a negation cannot be written."""
        flat = [self.resolved(b, f"{pointer}/oneOf/{i}") for i, b in enumerate(branches)]
        overlaps = {
            i: [j for j, y in enumerate(flat) if j != i and y is not False and not self.disjoint(x, y)]
            for i, x in enumerate(flat)
            if x is not False
        }
        if not any(overlaps.values()):
            return branches
        resolve = partial(self.resolved, pointer=pointer)
        negations = {j: negation(flat[j], resolve) for js in overlaps.values() for j in js}
        if any(negated is None for negated in negations.values()):
            self.unenforceable("oneOf", pointer, "its branches may overlap and one has no negation here")
            return branches
        return [
            {"allOf": [branch, *(negations[j] for j in overlaps[i])]} if overlaps.get(i) else branch
            for i, branch in enumerate(branches)
        ]

    def types_of(self, schema: Any) -> set[str]:
        if schema is False:
            return set()
        if not isinstance(schema, dict):
            return set(TYPES)
        if "const" in schema:
            return {_json_type(schema["const"])} | (
                {"number"} if _json_type(schema["const"]) == "integer" else set()
            )
        if "enum" in schema and isinstance(schema["enum"], list):
            found = {_json_type(v) for v in schema["enum"]}
            return found | ({"number"} if "integer" in found else set())
        declared = schema.get("type")
        if declared is None:
            return set(TYPES)
        names = set(declared) if isinstance(declared, list) else {declared}
        return names | ({"integer"} if "number" in names else set())

    def disjoint(self, a: Any, b: Any) -> bool:
        """Whether no value can satisfy both (checked on types, constants and required constant properties)."""
        if a is False or b is False:
            return True
        if not isinstance(a, dict) or not isinstance(b, dict):
            return False
        if not (self.types_of(a) & self.types_of(b)):
            return True
        values_a, values_b = self.finite_values(a), self.finite_values(b)
        if values_a is not None and values_b is not None:
            return not ({_value_key(v) for v in values_a} & {_value_key(v) for v in values_b})
        if self.types_of(a) & self.types_of(b) <= {"object"}:
            props_a, props_b = a.get("properties") or {}, b.get("properties") or {}
            for name in set(a.get("required") or []) & set(b.get("required") or []):
                if (
                    name in props_a
                    and name in props_b
                    and self.disjoint(self.resolved(props_a[name], ""), self.resolved(props_b[name], ""))
                ):
                    return True
            for x, y in ((a, b), (b, a)):
                for name in x.get("required") or []:
                    if y.get("additionalProperties") is False and name not in (y.get("properties") or {}):
                        return True
        return False

    @staticmethod
    def finite_values(schema: dict[str, Any]) -> list[Any] | None:
        """The values `const` and `enum` allow together (both hold when both are given), or None."""
        found = [schema["const"]] if "const" in schema else None
        if isinstance(schema.get("enum"), list):
            listed = {_value_key(value) for value in schema["enum"]}
            found = list(schema["enum"]) if found is None else [v for v in found if _value_key(v) in listed]
        return found

    # -------------------------------------------------------------------------------- one schema

    def plain(self, schema: dict[str, Any], pointer: str) -> str | None:
        types = self.declared_types(schema, pointer)
        if self.negates_everything(schema, pointer):
            return None
        if "const" in schema or "enum" in schema:
            return self.values(schema, pointer, types)
        options: list[str | None] = []
        for name in types:
            if name == "null":
                options.append(self.use("null"))
            elif name == "boolean":
                options.append(self.use("boolean"))
            elif name == "string":
                options.append(self.string(schema, pointer))
            elif name == "number":
                options.append(self.number(schema, pointer, integer=False))
            elif name == "integer" and "number" not in types:
                options.append(self.number(schema, pointer, integer=True))
            elif name == "object":
                options.append(self.object(schema, pointer))
            elif name == "array":
                options.append(self.array(schema, pointer))
        if set(types) == set(TYPES) and all(k in ANNOTATIONS or k not in ASSERTIONS for k in schema):
            return self.use("value")
        return self.rule("v", _alt(options))

    def declared_types(self, schema: dict[str, Any], pointer: str) -> list[str]:
        declared = schema.get("type")
        if declared is None:
            names = list(TYPES)
        else:
            names = declared if isinstance(declared, list) else [declared]
            for name in names:
                if not isinstance(name, str) or name not in TYPES:
                    raise self.invalid(pointer, f"unknown type {name!r}")
        negated = schema.get("not")
        if isinstance(negated, dict) and set(negated) - ANNOTATIONS <= {"type"} and "type" in negated:
            excluded = negated["type"] if isinstance(negated["type"], list) else [negated["type"]]
            names = [n for n in names if n not in excluded and not (n == "integer" and "number" in excluded)]
            if "integer" in excluded and "number" in names:
                self.unenforceable("not", pointer, "excluding integers from numbers")
        return [n for n in TYPES if n in names]

    def negates_everything(self, schema: dict[str, Any], pointer: str) -> bool:
        """Checks `not`, `if` and dynamic references; True when `not` excludes every value."""
        negated = schema.get("not")
        if "not" in schema:
            if negated is True or negated == {}:
                return True
            type_only = (
                isinstance(negated, dict) and "type" in negated and set(negated) - ANNOTATIONS <= {"type"}
            )
            if negated is not False and not type_only and not _excludes_strings(schema):
                self.unenforceable("not", pointer)
        if "if" in schema and ("then" in schema or "else" in schema):
            self.unenforceable("if", pointer)
        for keyword in ("$dynamicRef", "$recursiveRef"):
            if keyword in schema:
                self.unenforceable(keyword, pointer)
        return False

    def values(self, schema: dict[str, Any], pointer: str, types: list[str]) -> str | None:
        if "enum" in schema and not isinstance(schema["enum"], list):
            raise self.invalid(pointer, "enum must be an array")
        candidates = [schema["const"]] if "const" in schema else []
        if "enum" in schema:
            enum_values = schema["enum"]
            keys = {_value_key(v) for v in enum_values}
            candidates = (
                [v for v in candidates if _value_key(v) in keys] if "const" in schema else enum_values
            )
        allowed_types = set(types) | ({"integer"} if "number" in types else set())
        kept = [v for v in candidates if _json_type(v) in allowed_types]
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const", "type") and k in ASSERTIONS}
        if rest and kept:
            checker = self.sub_grammar(rest, pointer)
            kept = [v for v in kept if checker.matches(json_text(v))]
        return _alt([self.literal(v) for v in kept])

    def literal(self, value: Any) -> str:
        """GBNF for one JSON value in any layout the grammar allows; numbers in any spelling of the same
        decimal value without exponent (1, 1.0 and 1.00 are one value in JSON Schema)."""
        if isinstance(value, list):
            if not value:
                return f'"[" {self.use("ws")} "]"'
            inner = ' "," ws '.join(self.literal(item) for item in value)
            return f'"[" {self.use("ws")} {inner} ws "]"'
        if isinstance(value, dict):
            if not value:
                return f'"{{" {self.use("ws")} "}}"'
            members = ' "," ws '.join(
                f'{_gbnf_literal(json.dumps(key, ensure_ascii=False))} ":" ws {self.literal(item)}'
                for key, item in value.items()
            )
            return f'"{{" {self.use("ws")} {members} ws "}}"'
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
            if number == number.to_integral_value():
                digits = str(abs(int(number)))
                sign = '"-"? ' if digits == "0" else '"-" ' if number < 0 else ""
                return f'{sign}"{digits}" ( "." "0"+ )?'
            return f'"{format(number.normalize(), "f")}" "0"*'
        return _gbnf_literal(json_text(value))

    def sub_grammar(self, schema: dict[str, Any], pointer: str) -> Grammar:
        """The grammar of `schema` alone, to test enum values against the keywords beside them."""
        sub = _SchemaCompiler(self.registry, self.lenient, self.closed_objects)
        root = sub.expr(schema, pointer)
        self.unenforced.extend(u for u in sub.unenforced if u not in self.unenforced)
        return compile_gbnf(sub.gbnf(root or "[^\\x00-\\U0010FFFF]"))

    # -------------------------------------------------------------------------------- strings

    def string(self, schema: dict[str, Any], pointer: str) -> str | None:
        low = self.count(schema, "minLength", pointer, 0)
        high = self.count(schema, "maxLength", pointer, None)
        constraints: list[tuple[str, str | None]] = []
        if low > 0 or high is not None:
            if high is not None and high < low:
                return None
            if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
                self.unenforceable(
                    "maxLength" if high is not None else "minLength", pointer, f"lengths above {MAX_REPEAT}"
                )
            else:
                constraints.append(
                    (
                        "minLength" if low else "maxLength",
                        self.rule("str", f'"\\"" {_repeat(self.use("char"), low, high)} "\\""'),
                    )
                )
        if "pattern" in schema:
            pattern = schema["pattern"]
            if not isinstance(pattern, str):
                raise self.invalid(pointer, "pattern must be a string")
            try:
                content = pattern_to_gbnf(pattern, self.use("char"))
            except GrammarError as exc:
                if not self.lenient:
                    raise GrammarError(f"JSON Schema keyword 'pattern' at '{pointer}': {exc.reason}") from exc
                self.unenforceable("pattern", pointer)
            else:
                constraints.append(("pattern", self.rule("pat", _seq('"\\""', content, '"\\""'))))
        excluded = string_exclusion(schema.get("not")) if _excludes_strings(schema) else None
        if excluded is not None:
            constraints.append(("not", self.key_not_in(excluded)))
        name = schema.get("format")
        if isinstance(name, str) and name in FORMAT_RULES:
            constraints.append(("format", f'"\\"" {self.use(FORMAT_RULES[name])} "\\""'))
        elif isinstance(name, str) and name in UNSUPPORTED_FORMATS:
            self.unenforceable("format", pointer, f"format '{name}' has no grammar here")
        if not constraints:
            return self.use("string")
        if len(constraints) > 1:
            combined = self.combined_string(schema, pointer, low, high, excluded)
            if combined is not False:
                return combined
        for keyword, _ in constraints[1:]:
            self.unenforceable(keyword, pointer, f"together with '{constraints[0][0]}' on one string")
        return constraints[0][1]

    def combined_string(
        self, schema: dict[str, Any], pointer: str, low: int, high: int | None, excluded: list[str] | None
    ) -> str | None | bool:
        """One string under several of pattern, lengths, format and excluded values, as the intersection
        of their automata (char_dfa); False when one of them has no automaton or it grows too big."""
        try:
            dfa = string_dfa(schema, low, high, excluded)
        except GrammarError:
            return False
        if dfa is None:
            return False
        content = dfa_to_gbnf(dfa, self.new_name, self.rules.__setitem__)
        return None if content is None else self.rule("str", f'"\\"" {content} "\\""')

    def count(self, schema: dict[str, Any], key: str, pointer: str, default: int | None) -> Any:
        if key not in schema:
            return default
        value = schema[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
            raise self.invalid(pointer, f"{key} must be a non-negative integer")
        return int(value)

    # -------------------------------------------------------------------------------- numbers

    def number(self, schema: dict[str, Any], pointer: str, integer: bool) -> str | None:
        bounds: dict[str, Decimal] = {}
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if key in schema:
                value = schema[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise self.invalid(pointer, f"{key} must be a number")
                bounds[key] = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        low, low_inclusive = self.bound(bounds, "minimum", "exclusiveMinimum", lower=True)
        high, high_inclusive = self.bound(bounds, "maximum", "exclusiveMaximum", lower=False)
        if "multipleOf" in schema:
            step = schema["multipleOf"]
            if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
                raise self.invalid(pointer, "multipleOf must be a number above 0")
            sign = self.zero_bounded(low, low_inclusive, high, high_inclusive)
            multiples = self.multiples(Decimal(str(step)), integer, sign)
            if multiples is not None:
                return multiples
            bounded = self.bounded_multiples(Decimal(str(step)), integer, low, low_inclusive, high, high_inclusive)
            if bounded is not None:
                return self.rule("multiple", bounded or None)
            if step == 1:
                integer = True
            elif not (integer and (1 / Decimal(str(step))) % 1 == 0):
                self.unenforceable("multipleOf", pointer, "beside bounds, or with this step")
        if integer:
            if low is None and high is None:
                return self.use("integer")
            low_int = (
                None
                if low is None
                else math.ceil(low) + (1 if not low_inclusive and low == math.ceil(low) else 0)
            )
            high_int = (
                None
                if high is None
                else math.floor(high) - (1 if not high_inclusive and high == math.floor(high) else 0)
            )
            return self.rule("int", integer_range(low_int, high_int))
        if low is None and high is None:
            return self.use("number")
        return self.rule("num", decimal_range(low, low_inclusive, high, high_inclusive))

    def multiples(self, step: Decimal, integer: bool, sign: str | None) -> str | None:
        """Numbers that are multiples of `step` when a grammar says it alone, with no bounds (`sign` "any") or
        with zero as the only bound ("nonnegative", "positive", "nonpositive", "negative"; None: other bounds).
        With step = a * 10^-n: an integer is a multiple when it is one of a / gcd(a, 10^n) (a remainder
        automaton over its digits); a decimal when its digits, the point dropped and padded to n fraction
        digits, spell a multiple of a (a remainder automaton that also counts fraction digits; for a = 1 simply
        at most n of them)."""
        if sign is None or step == 1:
            return None
        numerator, places = _decimal_parts(step)
        modulus = numerator // math.gcd(numerator, 10**places) if integer else numerator
        if (integer or places == 0) and 1 < modulus <= MAX_MODULUS:
            unsigned, nonzero = self.remainder_rules(modulus), self.remainder_rules(modulus, zero=False)
            signed = {
                "any": f'"-"? {unsigned}',
                "nonnegative": unsigned,
                "positive": nonzero,
                "nonpositive": f'"-" {nonzero} | "0"',
                "negative": f'"-" {nonzero}',
            }
            return self.rule("multiple", signed[sign])
        if integer or sign not in ("any", "nonnegative"):
            return None
        prefix = '"-"? ' if sign == "any" else ""
        if numerator == 1:
            return self.rule("multiple", f'{prefix}( "0" | [1-9] [0-9]* ) ( "." [0-9]{{1,{places}}} "0"* )?')
        if numerator * (places + 1) <= MAX_MODULUS:
            return self.rule("multiple", prefix + self.decimal_remainder_rules(numerator, places))
        return None

    @staticmethod
    def zero_bounded(
        low: Decimal | None, low_inclusive: bool, high: Decimal | None, high_inclusive: bool
    ) -> str | None:
        """The sign bounds leave when zero is their only value ("any" without bounds), else None."""
        if low is None and high is None:
            return "any"
        if high is None and low == 0:
            return "nonnegative" if low_inclusive else "positive"
        if low is None and high == 0:
            return "nonpositive" if high_inclusive else "negative"
        return None

    def decimal_remainder_rules(self, modulus: int, places: int) -> str:
        """Decimals without sign whose digits (point dropped, padded with zeros to `places` fraction digits)
        spell a multiple of `modulus`: rule `dmod<m>p<p>-<r>-<j>` reads the rest after a prefix leaving
        remainder r with j fraction digits read (`i`: still in the integer part). States that can never end
        get no rule and no reference."""
        State = tuple[int, int | None]

        def name(state: State) -> str:
            remainder, read = state
            return f"dmod{modulus}p{places}-{remainder}-{'i' if read is None else read}"

        def moves(state: State) -> dict[State, list[str]]:
            remainder, read = state
            found: dict[State, list[str]] = {}
            if read is None or read < places:
                following = None if read is None else read + 1
                for digit in range(10):
                    found.setdefault(((remainder * 10 + digit) % modulus, following), []).append(str(digit))
            if read is None:
                found.setdefault((remainder, 0), []).append(".")
            return found

        def ends(state: State) -> str | None:
            remainder, read = state
            if read == places:
                return '"0"*' if remainder == 0 else None
            if read == 0:
                return None
            return '""' if remainder * 10 ** (places - (read or 0)) % modulus == 0 else None

        states: list[State] = [(r, read) for r in range(modulus) for read in [None, *range(places + 1)]]
        alive = {state for state in states if ends(state) is not None}
        grew = True
        while grew:
            grew = False
            for state in states:
                if state not in alive and any(target in alive for target in moves(state)):
                    alive.add(state)
                    grew = True

        def options(state: State) -> list[str]:
            found = []
            for target, labels in moves(state).items():
                if target in alive:
                    head = '"."' if labels == ["."] else f"[{''.join(labels)}]"
                    found.append(f"{head} {name(target)}")
            end_option = ends(state)
            return found + ([end_option] if end_option is not None else [])

        for state in states:
            if state in alive:
                self.rules.setdefault(name(state), " | ".join(options(state)))
        starts: dict[State, list[str]] = {}
        for digit in range(1, 10):
            starts.setdefault((digit % modulus, None), []).append(str(digit))
        firsts = [f"[{''.join(digits)}] {name(target)}" for target, digits in starts.items() if target in alive]
        zero = f'"0" ( "." {name((0, 0))} )?' if (0, 0) in alive else '"0"'
        return "( " + " | ".join([zero, *firsts]) + " )"

    def bounded_multiples(
        self, step: Decimal, integer: bool, low: Decimal | None, low_inclusive: bool, high: Decimal | None,
        high_inclusive: bool,
    ) -> str | None:
        """Multiples of `step` between bounds, when a grammar says it: steps 10^-k as a decimal range with at
        most k fraction digits, other steps by listing the multiples when both bounds are given and there are
        at most MAX_LISTED_MULTIPLES of them. "" when no number qualifies; None when this cannot be said."""
        numerator, places = _decimal_parts(step)
        if not integer and numerator == 1 and places > 0:
            return decimal_range(low, low_inclusive, high, high_inclusive, places=places) or ""
        if low is None or high is None:
            return None
        first = math.ceil(low / step)
        if not low_inclusive and first * step == low:
            first += 1
        last = math.floor(high / step)
        if not high_inclusive and last * step == high:
            last -= 1
        if last - first + 1 > MAX_LISTED_MULTIPLES:
            return None
        values = [step * k for k in range(first, last + 1)]
        if integer:
            values = [value for value in values if value == value.to_integral_value()]
        return " | ".join(f'"{format(value.normalize(), "f")}"' for value in values)

    def remainder_rules(self, modulus: int, *, zero: bool = True) -> str:
        """Integers without sign divisible by `modulus` (zero among them unless not `zero`): rule
        `mod<m>-<r>` reads the rest of the digits after a prefix whose value leaves remainder r."""
        names = [f"mod{modulus}-{r}" for r in range(modulus)]
        for remainder, name in enumerate(names):
            targets: dict[int, list[int]] = {}
            for digit in range(10):
                targets.setdefault((remainder * 10 + digit) % modulus, []).append(digit)
            options = ['""'] if remainder == 0 else []
            options += [
                f"[{''.join(map(str, digits))}] {names[target]}" for target, digits in targets.items()
            ]
            self.rules.setdefault(name, " | ".join(options))
        starts: dict[int, list[int]] = {}
        for digit in range(1, 10):
            starts.setdefault(digit % modulus, []).append(digit)
        firsts = [f"[{''.join(map(str, digits))}] {names[target]}" for target, digits in starts.items()]
        return "( " + " | ".join(['"0"', *firsts] if zero else firsts) + " )"

    @staticmethod
    def bound(
        bounds: dict[str, Decimal], inclusive_key: str, exclusive_key: str, lower: bool
    ) -> tuple[Decimal | None, bool]:
        inclusive = bounds.get(inclusive_key)
        exclusive = bounds.get(exclusive_key)
        if inclusive is None:
            return exclusive, exclusive is None
        if exclusive is None:
            return inclusive, True
        if lower:
            return (exclusive, False) if exclusive >= inclusive else (inclusive, True)
        return (exclusive, False) if exclusive <= inclusive else (inclusive, True)

    # -------------------------------------------------------------------------------- objects

    def object(self, schema: dict[str, Any], pointer: str) -> str | None:
        if schema.get("dependentSchemas"):
            self.unenforceable("dependentSchemas", pointer)
        patterns = self.pattern_properties(schema, pointer)
        names_schema = schema.get("propertyNames", True)
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(properties, dict):
            raise self.invalid(pointer, "properties must be an object")
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise self.invalid(pointer, "required must be an array of strings")
        dependencies = self.dependent_required(schema, pointer)
        # Without additionalProperties, what no sibling evaluates is left to unevaluatedProperties (allOf
        # and $ref are merged into this schema by now; a branch holding its own was refused).
        extra_schema = schema.get("additionalProperties", schema.get("unevaluatedProperties", True))
        low = self.count(schema, "minProperties", pointer, 0)
        high = self.count(schema, "maxProperties", pointer, None)
        declared: dict[str, tuple[Any, str]] = {
            name: (sub, f"{pointer}/properties/{name}") for name, sub in properties.items()
        }
        # Names that only required or dependentRequired mention take their place after the properties.
        mentioned = [*required, *(n for trigger, needs in dependencies.items() for n in (*needs, trigger))]
        for name in mentioned:
            matching = [p.schema for p in patterns if p.dfa.matches(name)]
            declared.setdefault(
                name,
                ({"allOf": matching}, f"{pointer}/patternProperties")
                if matching
                else (extra_schema, f"{pointer}/additionalProperties"),
            )
        if self.closes(schema, len(declared), low):
            extra_schema = False
        names_dfa = None if names_schema in (True, {}) or not (declared or patterns) else self.names_dfa(
            names_schema, pointer
        )
        members: list[_Member] = []
        for name, (sub, where) in declared.items():
            matching = [p.schema for p in patterns if p.dfa.matches(name) and name in properties]
            if names_dfa is not None and not names_dfa.matches(name):
                sub = False
            value = self.expr({"allOf": [sub, *matching]} if matching else sub, where)
            if value is None and name in required:
                return None
            key = _gbnf_literal(json.dumps(name, ensure_ascii=False))
            kv = None if value is None else self.rule("kv", f'{key} ":" ws {value}')
            members.append(_Member(name, kv, name in required))
        self.use("ws")
        extra_value = (
            None if extra_schema is False else self.expr(extra_schema, f"{pointer}/additionalProperties")
        )
        extra = None
        if patterns or names_dfa is not None:
            extra = self.classed_extras(patterns, list(declared), names_dfa, extra_value)
        else:
            extra_key = self.extra_key(list(declared), names_schema, pointer)
            if extra_value is not None and extra_key is not None:
                extra = self.rule("kv", f'{extra_key} ":" ws {extra_value}')
        counted = high if high is not None else low
        if counted and len(members) * (counted + 2) > MAX_COUNTING_STATES:
            self.unenforceable(
                "maxProperties" if high is not None else "minProperties",
                pointer,
                f"counting to {counted} over {len(members)} properties takes too many rules",
            )
            low, high = 0, None
        return self.object_rule(members, extra, _Counts(low, high), dependencies)

    def pattern_properties(self, schema: dict[str, Any], pointer: str) -> list[PatternProperty]:
        """patternProperties with their automata ([] when absent); refused by name when a pattern has none."""
        if not schema.get("patternProperties"):
            return []
        try:
            return pattern_properties(schema, pointer)
        except GrammarError as exc:
            self.unenforceable("patternProperties", pointer, exc.reason)
            return []

    def names_dfa(self, names_schema: Any, pointer: str) -> CharDfa | None:
        """propertyNames as a key automaton, for objects with declared names or patterns; refused by name
        when it has none (without declared names or patterns, extra_key() writes it as a schema)."""
        try:
            found = property_names_dfa(names_schema)
        except GrammarError:
            found = None
        if found is None:
            self.unenforceable("propertyNames", pointer, "beside declared properties or patternProperties")
        return found

    def classed_extras(
        self, patterns: list[PatternProperty], declared: list[str], names: CharDfa | None, extra_value: str | None
    ) -> str | None:
        """One `"key": value` rule over every class of undeclared keys (see schema_key_classes)."""
        options = []
        for keys in key_classes(patterns, declared, names):
            if keys.schemas:
                value = self.expr({"allOf": list(keys.schemas)}, keys.pointers[0])
            else:
                value = extra_value
            if value is None:
                continue
            content = dfa_to_gbnf(keys.dfa, self.new_name, self.rules.__setitem__, canonical=True)
            if content is not None:
                options.append(self.rule("kv", f'"\\"" {content} "\\"" ":" ws {value}'))
        return self.rule("kv", _alt(options))

    def closes(self, schema: dict[str, Any], n_declared: int, min_properties: int) -> bool:
        """Whether this object gets no extra properties though its schema allows them (closed_objects):
        it declares properties, says nothing of extras, and can reach minProperties without them."""
        return (
            self.closed_objects
            and bool(schema.get("properties"))
            and "additionalProperties" not in schema
            and "unevaluatedProperties" not in schema
            and min_properties <= n_declared
        )

    def dependent_required(self, schema: dict[str, Any], pointer: str) -> dict[str, tuple[str, ...]]:
        """dependentRequired, with the name-list entries of draft 7's `dependencies` (its schema entries
        are dependentSchemas, which no grammar here enforces)."""
        found = schema.get("dependentRequired", {})
        legacy = schema.get("dependencies", {})
        if isinstance(legacy, dict) and isinstance(found, dict):
            if any(not isinstance(needs, list) for needs in legacy.values()):
                self.unenforceable("dependencies", pointer, "its schema entries")
            found = {**{k: v for k, v in legacy.items() if isinstance(v, list)}, **found}
        if not isinstance(found, dict) or not all(
            isinstance(needs, list) and all(isinstance(n, str) for n in needs) for needs in found.values()
        ):
            raise self.invalid(pointer, "dependentRequired must map names to arrays of names")
        if len(found) > MAX_DEPENDENCIES:
            self.unenforceable("dependentRequired", pointer, f"more than {MAX_DEPENDENCIES} dependencies")
            return {}
        return {trigger: tuple(needs) for trigger, needs in found.items() if needs}

    def extra_key(self, declared: list[str], names_schema: Any, pointer: str) -> str | None:
        """The key of an extra property: not a declared name, and valid under propertyNames."""
        if names_schema in (True, {}):
            return self.key_not_in(declared)
        where = f"{pointer}/propertyNames"
        if declared:
            self.unenforceable("propertyNames", pointer, "beside declared properties")
            return self.key_not_in(declared)
        return self.expr({"allOf": [names_schema, {"type": "string"}]}, where)

    def key_not_in(self, names: list[str]) -> str:
        """A JSON key (canonical form, quotes included) that is none of `names`."""
        trie = _KeyTrie()
        for name in names:
            trie.add(_key_units(name))
        return f'"\\"" {self.key_node(trie)}'

    def key_node(self, node: _KeyTrie) -> str:
        tail = self.rule("key-tail", f'{self.use("key-char")}* "\\""')
        options = [] if node.terminal else ['"\\""']
        raw_children = [unit for unit in node.children if not unit.startswith("\\")]
        escape_children = {unit for unit in node.children if unit.startswith("\\")}
        excluded = [(ord(c), ord(c)) for c in raw_children] + [(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]
        raw_class = json_char_set(complement(tuple(excluded)))
        if raw_class:
            options.append(f"{raw_class} {tail}")
        free_escapes = [e for e in _KEY_ESCAPES if e not in escape_children]
        if escape_children:
            options += [f"{_gbnf_literal(e)} {tail}" for e in free_escapes]
        else:
            options.append(f'"\\\\" ( ["\\\\bfnrt] | "u00" ( "0" [0-7bef] | "1" [0-9a-f] ) ) {tail}')
        for unit, child in node.children.items():
            options.append(f"{_gbnf_literal(unit)} {self.key_node(child)}")
        return self.rule("key", " | ".join(options))

    def object_rule(
        self,
        members: list[_Member],
        extra: str | None,
        counts: _Counts,
        dependencies: dict[str, tuple[str, ...]],
    ) -> str | None:
        """Members in order, each present or (unless required) skipped, then the extra properties, with
        the property count in bounds and every present dependentRequired trigger's names present."""
        low, high = counts.low, counts.high
        cap = high if high is not None else low
        position = {member.name: index for index, member in enumerate(members)}
        memo: dict[tuple[int, int, bool, frozenset[str], frozenset[str]], str | None] = {}

        def tail(
            index: int, count: int, first: bool, pending: frozenset[str], barred: frozenset[str]
        ) -> str | None:
            """Members from `index` on, `count` written so far; `first`: none yet and one is needed;
            `pending`: names that must still come; `barred`: names that must not (a need was skipped)."""
            if high is not None and count > high:
                return None
            key = (index, min(count, cap + 1), first, pending, barred)
            if key in memo:
                return memo[key]
            if index == len(members):
                result = None if pending else self.extra_members(extra, count, first, counts)
            else:
                member = members[index]
                present = None
                if member.kv is not None and member.name not in barred:
                    needs = {n for n in dependencies.get(member.name, ()) if position[n] > index}
                    after = tail(index + 1, count + 1, False, (pending - {member.name}) | needs, barred)
                    present = _seq(member.kv if first else f'"," ws {member.kv}', after)
                skipped = None
                if not member.required and member.name not in pending:
                    triggers = {t for t, needs in dependencies.items() if member.name in needs}
                    skipped = tail(index + 1, count, first, pending, barred | triggers)
                result = self.rule("members", _alt([present, skipped]))
            memo[key] = result
            return result

        empty_ok = low == 0 and not any(member.required for member in members)
        nonempty = tail(0, 0, True, frozenset(), frozenset())
        options = ['"{" ws "}"'] if empty_ok else []
        if nonempty is not None:
            options.append(f'"{{" ws {nonempty} ws "}}"')
        return self.rule("object", _alt(options))

    @staticmethod
    def extra_members(extra: str | None, count: int, first: bool, counts: _Counts) -> str | None:
        """The extra properties after `count` declared ones, keeping the total within the counts."""
        need = max(1 if first else 0, counts.low - count)
        room = None if counts.high is None else counts.high - count
        if room is not None and room < need:
            return None
        if extra is None:
            return '""' if need == 0 else None
        if need > MAX_REPEAT or (room is not None and room > MAX_REPEAT):
            raise GrammarError("minProperties/maxProperties above the repetition limit")
        following = f'"," ws {extra}'
        if first:
            return f"{extra} {_repeat(following, need - 1, None if room is None else room - 1)}"
        return _repeat(following, need, room) if room != 0 else '""'

    # -------------------------------------------------------------------------------- arrays

    def array(self, schema: dict[str, Any], pointer: str) -> str | None:
        # Without items, what prefixItems leaves is up to unevaluatedItems (see object()).
        unevaluated = schema.get("unevaluatedItems", True)
        items = schema.get("items", unevaluated)
        if isinstance(items, list):
            prefix, rest, rest_where = (
                items,
                schema.get("additionalItems", unevaluated),
                f"{pointer}/additionalItems",
            )
        else:
            prefix, rest, rest_where = schema.get("prefixItems") or [], items, f"{pointer}/items"
        if isinstance(prefix, (dict, bool)) and "items" not in schema:
            prefix, rest, rest_where = [], prefix, f"{pointer}/prefixItems"
        if not isinstance(prefix, list):
            raise self.invalid(pointer, "prefixItems must be an array")
        low = self.count(schema, "minItems", pointer, 0)
        high = self.count(schema, "maxItems", pointer, None)
        if schema.get("uniqueItems") is True and not (high is not None and high <= 1):
            domain = None if prefix or "contains" in schema else self.item_domain(rest, rest_where)
            if domain is not None:
                return self.unique_array(domain, low, high)
            self.unenforceable(
                "uniqueItems", pointer, "over items that are not a few known values (enum, const, boolean)"
            )
        if "contains" in schema:
            if unevaluated not in (True, {}):
                self.unenforceable("unevaluatedItems", pointer, "beside contains")
            min_contains = self.count(schema, "minContains", pointer, 1)
            simple = not prefix and high is None and low <= min_contains and "maxContains" not in schema
            if min_contains > 0 and simple:
                return self.contains_array(rest, schema["contains"], min_contains, pointer)
            if min_contains > 0 or "maxContains" in schema:
                self.unenforceable("contains", pointer)
        elements: list[str] = []
        for index, sub in enumerate(prefix):
            if high is not None and index >= high:
                break
            value = self.expr(sub, f"{pointer}/prefixItems/{index}")
            if value is None:
                high = index if high is None else min(high, index)
                break
            elements.append(value)
        rest_value = self.expr(rest, rest_where)
        if rest_value is None:
            high = len(elements) if high is None else min(high, len(elements))
        if high is not None and high < low:
            return None
        self.use("ws")

        def tail(index: int) -> str | None:
            """Elements from `index` on when `index` of them are written (index > 0), or at least one (0)."""
            if index >= len(elements):
                need = max(1 if index == 0 else 0, low - index)
                room = None if high is None else high - index
                if room is not None and room < need:
                    return None
                if rest_value is None:
                    return '""' if need == 0 else None
                if need > MAX_REPEAT or (room is not None and room > MAX_REPEAT):
                    raise GrammarError(f"schema at '{pointer}': minItems/maxItems above {MAX_REPEAT}")
                following = f'"," ws {rest_value}'
                if index == 0:
                    return f"{rest_value} {_repeat(following, need - 1, None if room is None else room - 1)}"
                return _repeat(following, need, room) if room != 0 else '""'
            element = elements[index] if index == 0 else f'"," ws {elements[index]}'
            if high is not None and index >= high:
                return '""' if index >= low else None
            present = _seq(element, tail(index + 1))
            stop = '""' if index > 0 and index >= low else None
            return self.rule("items", _alt([present, stop]))

        options = ['"[" ws "]"'] if low == 0 else []
        nonempty = tail(0) if high is None or high > 0 else None
        if nonempty is not None:
            options.append(f'"[" ws {nonempty} ws "]"')
        return self.rule("array", _alt(options))

    def item_domain(self, items: Any, pointer: str) -> list[Any] | None:
        """The distinct JSON values `items` accepts when there are at most MAX_UNIQUE_DOMAIN of them, known
        from const, enum, or the types boolean and null (through $ref and allOf); else None."""
        schema = self.resolved(items, pointer)
        if not isinstance(schema, dict) or "anyOf" in schema or "oneOf" in schema:
            return None
        if "const" in schema or "enum" in schema:
            candidates = self.finite_values(schema)
            if candidates is None:
                return None
        else:
            types = self.declared_types(schema, pointer)
            if not set(types) <= {"boolean", "null"}:
                return None
            candidates = ([True, False] if "boolean" in types else []) + ([None] if "null" in types else [])
        distinct = list({_value_key(value): value for value in candidates}.values())
        if len(distinct) > MAX_UNIQUE_DOMAIN:
            return None
        checker = self.sub_grammar(schema, pointer)
        return [value for value in distinct if checker.matches(json_text(value))]

    def unique_array(self, domain: list[Any], low: int, high: int | None) -> str | None:
        """Arrays of distinct values from `domain` (uniqueItems): rule `<name>-<used>` continues an array whose
        values so far are the bits of `used`, so no value can come twice."""
        high = len(domain) if high is None else min(high, len(domain))
        if low > high:
            return None
        literals = [self.literal(value) for value in domain]
        base = self.new_name("unique")
        self.use("ws")
        for used in range(1 << len(domain)):
            count = used.bit_count()
            if count == 0 or count > high:
                continue
            options = [
                f'"," ws {literal} {base}-{used | 1 << index}'
                for index, literal in enumerate(literals)
                if not used >> index & 1 and count < high
            ]
            if count >= low:
                options.append('""')
            self.rules[f"{base}-{used}"] = " | ".join(options)
        firsts = [f"{literal} {base}-{1 << index}" for index, literal in enumerate(literals)] if high else []
        options = (['"[" ws "]"'] if low == 0 else []) + ([f'"[" ws ( {" | ".join(firsts)} ) ws "]"'] if firsts else [])
        return self.rule("array", _alt(options))

    def contains_array(self, items: Any, contains: Any, count: int, pointer: str) -> str | None:
        """Arrays of `items` of which at least `count` also match `contains` (any length, no prefix)."""
        item = self.expr(items, f"{pointer}/items")
        match = self.expr({"allOf": [items, contains]}, f"{pointer}/contains")
        if item is None or match is None:
            return None
        self.use("ws")
        following = f'( "," ws {item} )*'
        needing = [following]
        for _ in range(count):
            needing.append(self.rule("contains", f'{following} "," ws {match} {needing[-1]}'))
        start = f"( {item} {needing[count]} | {match} {needing[count - 1]} )"
        return self.rule("array", f'"[" ws {start} ws "]"')


# ------------------------------------------------------------------------------------------ public API


def json_schema_to_gbnf(
    schema: dict[str, Any] | bool,
    *,
    lenient: bool = False,
    closed_objects: bool = False,
    resolver: Resolver | None = None,
) -> tuple[str, tuple[str, ...]]:
    """GBNF text (start rule `root`) of the JSON texts valid under `schema`, and the keywords left
    unenforced ("keyword at pointer"; always empty unless lenient). Raises GrammarError on a bad schema,
    a keyword it cannot enforce (strict), or a schema that accepts no value. `closed_objects`: see the
    module docstring."""
    try:
        size = len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise GrammarError(f"the schema is not JSON: {exc}") from exc
    _check_schema_size(size)
    registry = SchemaRegistry(resolver)
    root_schema = registry.add_root(schema)
    compiler = _SchemaCompiler(registry, lenient, closed_objects)
    try:
        root = compiler.expr(root_schema, "#")
    except RecursionError:
        raise GrammarError(
            "the schema is too deeply nested or has too many properties or items to compile"
        ) from None
    if root is None:
        raise GrammarError("the schema accepts no value, so no output can satisfy it")
    return compiler.gbnf(root), tuple(compiler.unenforced)


def _compile(schema: Any, lenient: bool, closed_objects: bool, resolver: Resolver | None) -> Grammar:
    text, unenforced = json_schema_to_gbnf(
        schema, lenient=lenient, closed_objects=closed_objects, resolver=resolver
    )
    try:
        grammar = compile_gbnf(text)
    except GrammarError as exc:
        raise GrammarError(f"the schema cannot be compiled to a grammar: {exc.reason}") from exc
    return dataclasses.replace(grammar, unenforced=unenforced)


def _check_schema_size(json_chars: int) -> None:
    """A schema bigger than the grammar limit would compile to a bigger grammar still; refused up front."""
    if json_chars > MAX_GRAMMAR_CHARS:
        raise GrammarError(f"the schema is {json_chars:,} characters of JSON; the limit is {MAX_GRAMMAR_CHARS:,}")


def _decimal_parts(value: Decimal) -> tuple[int, int]:
    """(a, n) with value == a * 10^-n, a a positive integer and n >= 0 as small as can be."""
    _, digits, exponent = value.normalize().as_tuple()
    if not isinstance(exponent, int):
        raise TypeError(f"{value} is not a finite number")
    numerator = int("".join(map(str, digits)))
    if exponent >= 0:
        return numerator * 10**exponent, 0
    return numerator, -exponent


class _LruCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, bool, bool], Grammar] = OrderedDict()
        self.lock = Lock()

    def get(self, key: tuple[str, bool, bool], build: Callable[[], Grammar]) -> Grammar:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
                return found
        grammar = build()
        with self.lock:
            self.entries[key] = grammar
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return grammar


_CACHE = _LruCache(256)


def compile_json_schema(
    schema: dict[str, Any] | bool,
    *,
    lenient: bool = False,
    closed_objects: bool = False,
    resolver: Resolver | None = None,
) -> Grammar:
    """Compile a JSON Schema to a Grammar, memoized by its compact JSON text and the options in a bounded
    LRU (not when a `resolver` is given: what it returns may change). Keys keep their order: the grammar
    writes properties in schema order, so schemas that differ only in that order differ here."""
    if resolver is not None:
        return _compile(schema, lenient, closed_objects, resolver)
    try:
        key = json.dumps(schema, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise GrammarError(f"the schema is not JSON: {exc}") from exc
    _check_schema_size(len(key))
    return _CACHE.get(
        (key, lenient, closed_objects), lambda: _compile(json.loads(key), lenient, closed_objects, None)
    )


def compile_json_object() -> Grammar:
    """`json_object` mode: any JSON value whose top is an object."""
    compiler = _SchemaCompiler(SchemaRegistry(None), lenient=False)
    return compile_gbnf(compiler.gbnf(compiler.use("object-any")))
