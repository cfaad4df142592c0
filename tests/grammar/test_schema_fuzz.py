"""Random small schemas mixing keywords that rewrite and merge into one another (not, if/then/else, anyOf,
allOf and $ref merging, const with enum, contains with minContains, bounds, lengths, required, properties,
items, formats...): each either compiles to a grammar that accepts no value a JSON Schema validator rejects,
or is refused by name. Never a false accept, and never a rewrite that loops (which would surface as a "too
deeply nested" refusal). It found three false accepts and a looping rewrite the hand-written tests missed."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import pytest

from edge_runtime.grammar import GrammarError, compile_json_schema
from edge_runtime.grammar.json_schema import json_text

POOL: list[Any] = [
    None, True, False, -3, -1, 0, 0.5, 1, 1.0, 2, 2.5, 3, 4, 6, 7, 10, "", "a", "ab", "abcd", "a1", "2020-01-01",
    [], [1], [1, 1], [1, 2, 3], ["a", "b"], ["a", "a"], [1, "a"], [None], [[1]], [{"a": 1}],
    {}, {"a": 1}, {"a": "x"}, {"b": 2}, {"a": 1, "b": "y"}, {"a": None}, {"a": "x", "b": "yz"}, {"c": 1},
    {"a": 1, "c": []}, {"ab": 1},
]
SCALARS: list[Any] = [None, True, False, 0, 1, 2.5, "a", "ab", ""]
VALUES: list[Any] = [*SCALARS, [1], {"a": 1}]
TYPES = [
    "string", "number", "null", "boolean", "object", "array", "integer",
    ["string", "null"], ["number", "string"], ["array", "object"],
]
LOGIC = ["type", "const", "enum", "bound", "length", "required", "properties", "not", "if", "anyOf", "count"]
STRUCTURE = [
    "oneOf", "allOf", "items", "prefixItems", "uniqueItems", "contains", "additionalProperties", "propertyNames",
    "multipleOf", "pattern", "format", "dependentRequired", "ref",
]


def random_schema(rng: random.Random, kinds: list[str], depth: int = 0) -> dict[str, Any]:
    """A schema of one to three keywords drawn from `kinds` (the first seven only, below depth 2)."""
    if depth > 2:
        kinds = kinds[:7]
    out: dict[str, Any] = {}

    def sub() -> dict[str, Any]:
        return random_schema(rng, kinds, depth + 1)

    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(kinds)
        if kind == "type":
            out["type"] = rng.choice(TYPES)
        elif kind == "const":
            out["const"] = rng.choice(VALUES)
        elif kind == "enum":
            out["enum"] = rng.sample(VALUES, rng.randint(1, 3))
        elif kind == "bound":
            out[rng.choice(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"])] = rng.choice([-1, 0, 1, 2.5, 3])
        elif kind == "length":
            out[rng.choice(["maxLength", "minLength"])] = rng.randint(0, 3)
        elif kind == "count":
            key = rng.choice(["minItems", "maxItems", "minProperties", "maxProperties", "minContains", "maxContains"])
            out[key] = rng.randint(0, 2)
        elif kind == "required":
            out["required"] = rng.sample(["a", "b"], rng.randint(1, 2))
        elif kind == "properties":
            out["properties"] = {name: sub() for name in rng.sample(["a", "b"], rng.randint(1, 2))}
        elif kind == "not":
            out["not"] = sub()
        elif kind == "if":
            out["if"] = sub()
            if rng.random() < 0.8:
                out["then"] = sub()
            if rng.random() < 0.6:
                out["else"] = sub()
        elif kind in ("anyOf", "oneOf", "allOf"):
            out[kind] = [sub() for _ in range(rng.randint(1, 3))]
        elif kind == "items":
            out["items"] = rng.choice([sub(), True, False])
        elif kind == "prefixItems":
            out["prefixItems"] = [sub() for _ in range(rng.randint(1, 2))]
        elif kind == "uniqueItems":
            out["uniqueItems"] = rng.choice([True, False])
        elif kind == "contains":
            out["contains"] = sub()
        elif kind == "additionalProperties":
            out["additionalProperties"] = rng.choice([sub(), False, True])
        elif kind == "propertyNames":
            out["propertyNames"] = rng.choice([{"maxLength": 1}, {"enum": ["a", "c"]}, {"pattern": "^a"}])
        elif kind == "multipleOf":
            out["multipleOf"] = rng.choice([2, 0.5, 1.5, 3])
        elif kind == "pattern":
            out["pattern"] = rng.choice(["^a", "b$", "[0-9]", "^a*$", "^.{2}$"])
        elif kind == "format":
            out["format"] = rng.choice(["date", "email", "uuid", "ipv4"])
        elif kind == "dependentRequired":
            out["dependentRequired"] = {"a": ["b"]}
        elif kind == "ref" and depth == 0:
            out["$defs"] = {"x": sub()}
            out["$ref"] = "#/$defs/x"
    return out


@pytest.mark.parametrize(
    ("kinds", "seed"),
    [(LOGIC, seed) for seed in range(3)] + [(LOGIC + STRUCTURE, seed) for seed in range(3)],
    ids=[f"logic-{seed}" for seed in range(3)] + [f"all-{seed}" for seed in range(3)],
)
def test_random_schemas_never_accept_an_invalid_value(kinds: list[str], seed: int) -> None:
    rng = random.Random(seed)
    compiled = 0
    for _ in range(250):
        schema = random_schema(rng, kinds)
        try:
            grammar = compile_json_schema(schema)
        except GrammarError as exc:
            assert "too deeply nested" not in str(exc), schema
            continue
        compiled += 1
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        for value in POOL:
            if grammar.matches(json_text(value)):
                assert validator.is_valid(value), f"{schema} accepts {value!r}"
    assert compiled > 100
