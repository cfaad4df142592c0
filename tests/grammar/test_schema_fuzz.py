"""Random small schemas mixing the keywords that rewrite one another (not, if/then/else, anyOf, const and enum
together, bounds, lengths, required, properties): each either compiles to a grammar that accepts no value a
JSON Schema validator rejects, or is refused by name. Never a false accept, and never a rewrite that loops
(which would surface as a "too deeply nested" refusal)."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import pytest

from edge_runtime.grammar import GrammarError, compile_json_schema
from edge_runtime.grammar.json_schema import json_text

POOL: list[Any] = [
    None, True, False, -3, -1, 0, 0.5, 1, 2, 2.5, 7, "", "a", "ab", "abcd", [], [1], [1, 2, 3],
    {}, {"a": 1}, {"a": "x"}, {"b": 2}, {"a": 1, "b": "y"}, {"a": None}, {"a": "x", "b": "yz"},
]
SCALARS: list[Any] = [None, True, False, 0, 1, 2.5, "a", "ab", ""]
TYPES = ["string", "number", "null", "boolean", "object", "array", ["string", "null"], ["number", "string"], "integer"]


def random_schema(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    kinds = ["type", "const", "enum", "bound", "length", "required", "properties", "not", "if", "anyOf", "count"]
    if depth > 2:
        kinds = kinds[:7]
    out: dict[str, Any] = {}
    for _ in range(rng.randint(1, 2)):
        kind = rng.choice(kinds)
        if kind == "type":
            out["type"] = rng.choice(TYPES)
        elif kind == "const":
            out["const"] = rng.choice(SCALARS)
        elif kind == "enum":
            out["enum"] = rng.sample(SCALARS, rng.randint(1, 3))
        elif kind == "bound":
            out[rng.choice(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"])] = rng.choice([-1, 0, 1, 2.5])
        elif kind == "length":
            out[rng.choice(["maxLength", "minLength"])] = rng.randint(0, 3)
        elif kind == "count":
            out[rng.choice(["minItems", "maxItems", "minProperties", "maxProperties"])] = rng.randint(0, 2)
        elif kind == "required":
            out["required"] = rng.sample(["a", "b"], rng.randint(1, 2))
        elif kind == "properties":
            out["properties"] = {name: random_schema(rng, depth + 1) for name in rng.sample(["a", "b"], rng.randint(1, 2))}
        elif kind == "not":
            out["not"] = random_schema(rng, depth + 1)
        elif kind == "if":
            out["if"] = random_schema(rng, depth + 1)
            if rng.random() < 0.8:
                out["then"] = random_schema(rng, depth + 1)
            if rng.random() < 0.6:
                out["else"] = random_schema(rng, depth + 1)
        else:
            out["anyOf"] = [random_schema(rng, depth + 1) for _ in range(rng.randint(1, 3))]
    return out


@pytest.mark.parametrize("seed", range(4))
def test_random_logic_schemas_never_accept_an_invalid_value(seed: int) -> None:
    rng = random.Random(seed)
    compiled = 0
    for _ in range(250):
        schema = random_schema(rng)
        try:
            grammar = compile_json_schema(schema)
        except GrammarError as exc:
            assert "too deeply nested" not in str(exc), schema
            continue
        compiled += 1
        validator = jsonschema.Draft202012Validator(schema)
        for value in POOL:
            if grammar.matches(json_text(value)):
                assert validator.is_valid(value), f"{schema} accepts {value!r}"
    assert compiled > 150
