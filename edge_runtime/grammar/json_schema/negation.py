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

from edge_runtime.grammar.json_schema.formats import FORMAT_RULES, UNSUPPORTED_FORMATS
from edge_runtime.grammar.json_schema.keywords import (
    ANNOTATIONS,
    APPLICATORS,
    ASSERTIONS,
    FRACTIONAL,
    NOT_MULTIPLE_OF,
    NOT_PATTERNS,
    SOME_PROPERTY,
    TYPES,
)
from edge_runtime.grammar.json_schema.string_sets import not_matching

Schema = Any
Resolve = Callable[[Schema], Schema]
Disjoint = Callable[[Schema, Schema], bool]


def _never_disjoint(a: Schema, b: Schema) -> bool:
    return False


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


MAX_NEGATED_COMPOUNDS = 16
"""Most objects and arrays an enum's negation excludes (each one is an anyOf over its keys or items)."""
MAX_NEGATION_STEPS = 4000
"""Most schemas and oneOf pairs one Negator looks at: past that, nested oneOf negations grow exponentially (a
oneOf's negation holds every pair of its branches) and the negation is given up (None)."""


class _TooBig(Exception):
    """A Negator went over MAX_NEGATION_STEPS."""


class Negator:
    """Negations under one `resolve` and `disjoint`, each subschema's negated once (by identity; the schemas
    are kept so no identity is reused) within MAX_NEGATION_STEPS in all."""

    def __init__(self, resolve: Resolve, disjoint: Disjoint = _never_disjoint) -> None:
        self.resolve = resolve
        self.disjoint = disjoint
        self.steps = 0
        self.memo: dict[int, tuple[Schema, Schema | None]] = {}

    def __call__(self, schema: Schema) -> Schema | None:
        """A schema accepting exactly the values `schema` rejects, or None when it cannot be written."""
        try:
            return self.negated(schema)
        except _TooBig:
            return None

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_NEGATION_STEPS:
            raise _TooBig

    def negated(self, schema: Schema) -> Schema | None:
        if id(schema) in self.memo:
            return self.memo[id(schema)][1]
        self.step()
        found = self.fresh(schema)
        self.memo[id(schema)] = (schema, found)
        return found

    def fresh(self, original: Schema) -> Schema | None:
        schema = self.resolve(original)
        if schema is True:
            return False
        if schema is False:
            return True
        if not isinstance(schema, dict):
            return None
        parts: list[Schema] = []
        for key, value in schema.items():
            if key in ANNOTATIONS or (key not in ASSERTIONS and key not in APPLICATORS):
                continue  # an unknown keyword constrains nothing: no value fails it
            if key in ("then", "else") and "if" not in schema:
                continue
            part = _keyword_negation(key, value, schema, self)
            if part is None:
                return None
            if part is not False:
                parts.append(part)
        if not parts:
            return False
        return parts[0] if len(parts) == 1 else {"anyOf": parts}


def negation(schema: Schema, resolve: Resolve, disjoint: Disjoint = _never_disjoint) -> Schema | None:
    """A schema accepting exactly the values `schema` rejects, or None when it cannot be written. `resolve`
    merges a schema's $ref and allOf into it; `disjoint(a, b)` is True only when no value meets both (it
    prunes the pairs of a negated oneOf)."""
    return Negator(resolve, disjoint)(schema)


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


def _keyword_negation(key: str, value: Any, schema: dict[str, Any], negator: Negator) -> Schema | None:
    """The values that fail this one keyword of `schema` (False: none do), or None when that cannot be
    written."""
    negated = negator.negated

    if key == "type":
        names = value if isinstance(value, list) else [value]
        if not all(isinstance(name, str) and name in TYPES for name in names):
            return None
        integers_only = "integer" in names and "number" not in names
        whole = _other_types([*names, "number"] if integers_only else names)
        others: list[Schema] = [{"type": whole}] if whole else []
        if integers_only:
            others.append({"type": "number", FRACTIONAL: True})  # the numbers that are not integers
        return False if not others else others[0] if len(others) == 1 else {"anyOf": others}
    if key == "multipleOf":
        integral = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1 and value == int(value)
        return {"type": "number", NOT_MULTIPLE_OF: [int(value)]} if integral else None
    if key == NOT_MULTIPLE_OF:
        if not isinstance(value, list) or not value:
            return None
        multiples = [{"type": "number", "multipleOf": step} for step in value]
        return multiples[0] if len(multiples) == 1 else {"anyOf": multiples}
    if key == FRACTIONAL:
        return {"type": [*_other_types(["number"]), "integer"]} if value is True else False
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
    if key == "format" and isinstance(value, str) and value not in FORMAT_RULES and value not in UNSUPPORTED_FORMATS:
        return False  # a format the specification does not define is an annotation
    if key == "pattern":
        if not isinstance(value, str) or not_matching(value) is None:
            return None
        return {"type": "string", NOT_PATTERNS: [value]}
    if key == NOT_PATTERNS:
        if not isinstance(value, list) or not value:
            return None
        matching = [{"type": "string", "pattern": pattern} for pattern in value]
        return matching[0] if len(matching) == 1 else {"anyOf": matching}
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
            negated_value = negated(subschema)
            if negated_value is None:
                return None
            if negated_value is not False:
                failing.append({"type": "object", "required": [name], "properties": {name: negated_value}})
        return False if not failing else failing[0] if len(failing) == 1 else {"anyOf": failing}
    if key in ("additionalProperties", "patternProperties", "propertyNames"):
        return _property_negation(key, value, schema, negated)
    if key in ("items", "prefixItems"):
        return _items_negation(key, value, schema, negated)
    if key == "contains":
        if "minContains" in schema or "maxContains" in schema:
            return None
        every = negated(value)  # no item matches: every item fails `contains`
        return None if every is None else {"type": "array", "items": every}
    if key == "not":
        return value
    if key == "anyOf":
        if not isinstance(value, list) or not value:
            return None
        each = [negated(branch) for branch in value]
        if any(part is None for part in each):
            return None
        return {"allOf": each}
    if key == "oneOf":
        return _one_of_negation(value, negator)
    return None


def _items_negation(
    key: str, value: Any, schema: dict[str, Any], negated: Callable[[Schema], Schema | None]
) -> Schema | None:
    """Arrays with an item that fails `items` (an item after the prefix, when there is one) or `prefixItems`
    (the item at its index)."""
    if isinstance(value, list) and key == "items":
        return None  # draft 4's positional items: merged with prefixItems they would be misread
    prefix = value if key == "prefixItems" else None
    if prefix is None:
        if schema.get("prefixItems") or "additionalItems" in schema:
            return None  # `items` covers only the items after the prefix: contains cannot say that
        some = negated(value)
        return None if some is None else False if some is False else {"type": "array", "contains": some}
    if not isinstance(prefix, list):
        return None
    failing = []
    for index, item in enumerate(prefix):
        some = negated(item)
        if some is None:
            return None
        if some is not False:
            failing.append({"type": "array", "minItems": index + 1, "prefixItems": [*([True] * index), some]})
    return False if not failing else failing[0] if len(failing) == 1 else {"anyOf": failing}


def _property_negation(
    key: str, value: Any, schema: dict[str, Any], negated: Callable[[Schema], Schema | None]
) -> Schema | None:
    """Objects with a property that fails `additionalProperties` (a key no `properties` name or
    `patternProperties` pattern takes), `patternProperties` (a key its pattern matches) or `propertyNames`
    (a key it rejects): written with the compiler's SOME_PROPERTY (objects.py)."""
    if key == "propertyNames":
        if value is True or value == {}:
            return False
        return {"type": "object", SOME_PROPERTY: [{"value": True, "notKeys": value}]}
    if not isinstance(value, dict) and key == "patternProperties":
        return None
    entries = value.items() if key == "patternProperties" else [(None, value)]
    failing = []
    for pattern, subschema in entries:
        bad = negated(subschema)
        if bad is None:
            return None
        if bad is False:
            continue
        if pattern is not None:
            failing.append({"type": "object", SOME_PROPERTY: [{"value": bad, "pattern": pattern}]})
            continue
        names, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
        if not isinstance(names, dict) or not isinstance(patterns, dict):
            return None
        spec = {"value": bad, "notNames": list(names), "notPatterns": list(patterns)}
        failing.append({"type": "object", SOME_PROPERTY: [spec]})
    return False if not failing else failing[0] if len(failing) == 1 else {"anyOf": failing}


def _one_of_negation(branches: Any, negator: Negator) -> Schema | None:
    """The values that meet no branch, or two of them (pairs `disjoint` proves empty left out)."""
    if not isinstance(branches, list) or not branches:
        return None
    each = [negator.negated(branch) for branch in branches]
    if any(part is None for part in each):
        return None
    flat = [negator.resolve(branch) for branch in branches]
    pairs = []
    for i in range(len(branches)):
        for j in range(i + 1, len(branches)):
            negator.step()
            if not negator.disjoint(flat[i], flat[j]):
                pairs.append({"allOf": [branches[i], branches[j]]})
    return {"anyOf": [{"allOf": each}, *pairs]} if pairs else {"allOf": each}


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
    """Every value but those listed (JSON equality: 1 and 1.0 are one number): objects and arrays each by
    `_not_compound`, the scalars by `_not_scalars`."""
    compounds = [value for value in values if isinstance(value, (list, dict))]
    if not compounds:
        return _not_scalars(values)
    if len(compounds) > MAX_NEGATED_COMPOUNDS:
        return None
    scalars = _not_scalars([value for value in values if not isinstance(value, (list, dict))])
    return {"allOf": [*([] if scalars is False else [scalars]), *map(_not_compound, compounds)]}


def _not_compound(value: list[Any] | dict[str, Any]) -> Schema:
    """Every value but this object or array: another type, or of this type with a key (an item) missing or
    extra, or one whose value differs."""
    if isinstance(value, dict):
        def keys(changed: str, schema: Schema) -> dict[str, Schema]:
            """Every key of `value` declared in its order (the grammar writes declared keys first)."""
            return {key: schema if key == changed else True for key in value}

        parts: list[Schema] = [{"type": _other_types(["object"])}]
        parts += [{"type": "object", "properties": keys(key, False)} for key in value]
        witness = {"value": True, "notNames": list(value)}
        parts.append({"type": "object", "properties": keys("", True), SOME_PROPERTY: [witness]})
        parts += [
            {"type": "object", "required": [key], "properties": keys(key, _not_values([item]))}
            for key, item in value.items()
        ]
        return {"anyOf": parts}
    parts = [{"type": _other_types(["array"])}, {"type": "array", "minItems": len(value) + 1}]
    if value:
        parts.append({"type": "array", "maxItems": len(value) - 1})
    parts += [
        {"type": "array", "minItems": index + 1, "prefixItems": [*([True] * index), _not_values([item])]}
        for index, item in enumerate(value)
    ]
    return {"anyOf": parts}


def _not_scalars(values: list[Any]) -> Schema:
    """Every value but these strings, numbers, booleans and nulls: the types none of them has, the other
    boolean, strings other than the listed ones, and the open intervals between the numbers."""
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
