"""`not`, `if`/`then`/`else` and `dependentSchemas` without a negation operator: the complement of a simple
schema written as a schema the compiler already knows.

A schema is a conjunction of keyword constraints, each of which holds trivially for values of other types
(`minimum` says nothing about strings). So not-S is the disjunction of the keywords' complements, and each
complement is the keyword's type with the opposite bound: not `{"minimum": 3}` is
`{"type": "number", "exclusiveMaximum": 3}`; not `{"const": "x"}` is every other type, and strings under
`{"not": {"enum": ["x"]}}`, a form the compiler writes itself. Keywords with no complement the compiler could
say (`pattern`, `multipleOf`, `items`, the integers apart from other numbers, ...) make the whole negation
unavailable: None, and the caller refuses the keyword by name.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from itertools import pairwise
from typing import Any

from edge_runtime.grammar.json_schema.keywords import ANNOTATIONS, TYPES

Schema = Any
Resolve = Callable[[Schema], Schema]

_OPPOSITE_BOUND = {
    "minimum": "exclusiveMaximum",
    "exclusiveMinimum": "maximum",
    "maximum": "exclusiveMinimum",
    "exclusiveMaximum": "minimum",
}
_COUNTS = {
    "minLength": ("string", "maxLength", -1),
    "maxLength": ("string", "minLength", 1),
    "minItems": ("array", "maxItems", -1),
    "maxItems": ("array", "minItems", 1),
    "minProperties": ("object", "maxProperties", -1),
    "maxProperties": ("object", "minProperties", 1),
}
_PLAIN_TYPES = [name for name in TYPES if name != "integer"]
"""The types that partition JSON values (integers are numbers)."""


def negation(schema: Schema, resolve: Resolve) -> Schema | None:
    """A schema accepting exactly the values `schema` rejects, or None when it cannot be written. `resolve`
    merges a schema's $ref and allOf into it."""
    schema = resolve(schema)
    if schema is True:
        return False
    if schema is False:
        return True
    if not isinstance(schema, dict):
        return None
    parts: list[Schema] = []
    for key, value in schema.items():
        if key in ANNOTATIONS:
            continue
        part = _keyword_negation(key, value, resolve)
        if part is None:
            return None
        if part is not False:
            parts.append(part)
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else {"anyOf": parts}


def conditional(schema: dict[str, Any], resolve: Resolve) -> Schema | None:
    """`if`/`then`/`else` as `anyOf: [if and then, not-if and else]` (the rest of `schema` kept), or None
    when `if` has no negation."""
    condition = schema["if"]
    then_branch, else_branch = schema.get("then", True), schema.get("else", True)
    rest = {key: value for key, value in schema.items() if key not in ("if", "then", "else")}
    if condition is True:
        choice: Schema = then_branch
    elif condition is False:
        choice = else_branch
    else:
        negated = negation(condition, resolve)
        if negated is None:
            return None
        choice = {"anyOf": [{"allOf": [condition, then_branch]}, {"allOf": [negated, else_branch]}]}
    return {**rest, "allOf": [*rest.get("allOf", []), choice]}


def without_dependent_schemas(schema: dict[str, Any], resolve: Resolve) -> dict[str, Any]:
    """`dependentSchemas` (and the schema entries of draft 7's `dependencies`) as conditionals: with the
    property present the object also meets the schema. `schema` itself when there is nothing to rewrite."""
    out = dict(schema)
    added: list[Schema] = []
    for keyword in ("dependentSchemas", "dependencies"):
        entries = out.get(keyword)
        if not isinstance(entries, dict):
            continue
        kept = {}
        for name, subschema in entries.items():
            if keyword == "dependencies" and isinstance(subschema, list):
                kept[name] = subschema
                continue
            present = {"type": "object", "required": [name]}
            absent = negation(present, resolve)  # not an object, or one without the property
            # the subschema first: names it requires come before the trigger, as with dependentRequired
            added.append({"anyOf": [{"allOf": [subschema, present]}, absent]})
        if kept:
            out[keyword] = kept
        else:
            del out[keyword]
    if not added:
        return schema
    out["allOf"] = [*out.get("allOf", []), *added]
    return out


def without_not(schema: dict[str, Any], resolve: Resolve) -> Schema | None:
    """`schema` with its `not` replaced by the negation, or None when the negation cannot be written."""
    negated = negation(schema["not"], resolve)
    if negated is None:
        return None
    rest = {key: value for key, value in schema.items() if key != "not"}
    return {**rest, "allOf": [*rest.get("allOf", []), negated]}


def _other_types(names: list[str]) -> list[str]:
    return [name for name in _PLAIN_TYPES if name not in names]


def _keyword_negation(key: str, value: Any, resolve: Resolve) -> Schema | None:
    """The values that fail this one keyword (False: none do), or None when that cannot be written."""
    if key == "type":
        names = value if isinstance(value, list) else [value]
        if not all(isinstance(name, str) and name in TYPES for name in names):
            return None
        if "integer" in names and "number" not in names:
            return None  # the non-integral numbers have no schema of their own here
        others = _other_types(names)
        return {"type": others} if others else False
    if key in _OPPOSITE_BOUND:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return {"type": "number", _OPPOSITE_BOUND[key]: value}
    if key in _COUNTS:
        kind, opposite, step = _COUNTS[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
            return None
        bound = int(value) + step
        return False if bound < 0 else {"type": kind, opposite: bound}
    if key == "const":
        return _not_values([value])
    if key == "enum":
        return _not_values(value) if isinstance(value, list) else None
    if key == "required":
        if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
            return None
        missing = [{"type": "object", "properties": {name: False}} for name in dict.fromkeys(value)]
        return False if not missing else missing[0] if len(missing) == 1 else {"anyOf": missing}
    if key == "properties":
        if not isinstance(value, dict):
            return None
        failing = []
        for name, subschema in value.items():
            negated = negation(subschema, resolve)
            if negated is None:
                return None
            if negated is not False:
                failing.append({"type": "object", "required": [name], "properties": {name: negated}})
        return False if not failing else failing[0] if len(failing) == 1 else {"anyOf": failing}
    if key == "not":
        return value
    if key == "anyOf":
        if not isinstance(value, list) or not value:
            return None
        each = [negation(branch, resolve) for branch in value]
        if any(part is None for part in each):
            return None
        return {"allOf": each}
    return None


def string_exclusion(negated: Any) -> list[str] | None:
    """The strings `not` excludes when it is `{"const": string}` or `{"enum": [strings]}`: on a string schema
    the compiler writes that itself (a string spelled differently from each), so it is never rewritten."""
    if not isinstance(negated, dict) or set(negated) - ANNOTATIONS not in ({"const"}, {"enum"}):
        return None
    values = [negated["const"]] if "const" in negated else negated["enum"]
    if not isinstance(values, list) or not values or not all(isinstance(value, str) for value in values):
        return None
    return list(values)


def _not_values(values: list[Any]) -> Schema | None:
    """Every value but those listed (JSON equality: 1 and 1.0 are one number), when that can be written:
    the types none of them has, the other boolean, strings other than the listed ones, and the open intervals
    between the numbers."""
    if any(isinstance(value, (list, dict)) for value in values):
        return None
    strings = [value for value in values if isinstance(value, str)]
    numbers = sorted(
        {
            Decimal(str(value)): value
            for value in values
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }.items()
    )
    booleans = {value for value in values if isinstance(value, bool)}
    present = ({"null"} if None in values else set()) | ({"boolean"} if booleans else set())
    present |= {"number"} if numbers else set()
    present |= {"string"} if strings else set()
    parts: list[Schema] = []
    whole = _other_types(sorted(present))
    if whole:
        parts.append({"type": whole})
    if strings:
        parts.append({"type": "string", "not": {"enum": strings}})
    parts += [{"const": value} for value in (True, False) if booleans and value not in booleans]
    if numbers:
        bounds = [bound for _, bound in numbers]
        parts.append({"type": "number", "exclusiveMaximum": bounds[0]})
        parts += [
            {"type": "number", "exclusiveMinimum": low, "exclusiveMaximum": high}
            for low, high in pairwise(bounds)
        ]
        parts.append({"type": "number", "exclusiveMinimum": bounds[-1]})
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else {"anyOf": parts}
