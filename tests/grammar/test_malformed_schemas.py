"""A malformed schema is a GrammarError that says where (a 400 at the HTTP edge), never another exception: the
compiler checks the keywords it reads, and when it trips on one it did not (a `properties` that is a string,
reached through another keyword first) the metaschema says what is wrong."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from edge_runtime.grammar import GrammarCompiler, GrammarError

SEEDS: list[Any] = [
    {
        "type": "object",
        "properties": {"a": {"type": "string", "maxLength": 5}, "b": {"type": "array", "prefixItems": [{}]}},
        "required": ["a"],
        "additionalProperties": False,
    },
    {"anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/s"}], "$defs": {"s": {"enum": ["x", 1]}}},
    {"properties": {"foo": {}}, "dependentSchemas": {"foo": {"properties": {"bar": {}}}}},
    {"oneOf": [{"const": 1}, {"type": "string", "pattern": "^a+$"}], "not": {"const": "aa"}},
    {"type": "array", "items": {"type": "object", "patternProperties": {"^x": {"type": "null"}}}},
]
KEYWORDS = [
    "type", "properties", "items", "prefixItems", "additionalProperties", "required", "enum", "const", "oneOf",
    "anyOf", "allOf", "not", "$ref", "$defs", "minLength", "maxLength", "pattern", "format", "minimum",
    "multipleOf", "minItems", "uniqueItems", "patternProperties", "propertyNames", "dependentSchemas", "if",
]  # fmt: skip
VALUES: list[Any] = [None, True, 0, -1, 0.5, 1e308, "", "x", "#", "[", "integer", [], [1, "a"], {}, {"type": 3}]


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"properties": "(a)", "allOf": [{"properties": {"b": {}}}], "unevaluatedProperties": False}, "#/properties"),
        ({"oneOf": {"type": "string"}, "not": {"$ref": -1}}, "#"),
        ({"type": "object", "dependentSchemas": {"a": {"properties": "date-time"}}}, "#/dependentSchemas/a"),
        # a type no value has, met in a merge (where types are intersected) before any compile reads it
        ({"anyOf": [{"allOf": [{"type": "strnig"}, {"type": "string"}]}, {"type": "boolean"}]}, "#/anyOf/0"),
        ({"allOf": [{"type": "string"}, {"type": ["integer", 3]}]}, "#"),
    ],
)
def test_a_keyword_of_the_wrong_type_is_a_grammar_error_naming_where(schema: Any, where: str) -> None:
    with pytest.raises(GrammarError, match="invalid schema") as refused:
        GrammarCompiler().json_schema(schema)
    assert f"'{where}" in str(refused.value)


def _mutated(value: Any, rng: random.Random, depth: int = 0) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.7:
        value = dict(value)
        key = rng.choice(list(value))
        if rng.random() < 0.3:
            value[rng.choice(KEYWORDS)] = copy.deepcopy(rng.choice(VALUES))
        else:
            value[key] = _mutated(value[key], rng, depth + 1)
        return value
    if isinstance(value, list) and value and rng.random() < 0.6:
        value = list(value)
        index = rng.randrange(len(value))
        value[index] = _mutated(value[index], rng, depth + 1)
        return value
    return copy.deepcopy(rng.choice(VALUES))


def test_mutated_schemas_compile_or_are_grammar_errors() -> None:
    """600 schemas with keywords swapped for values of any type (the mutations that found the TypeErrors)."""
    rng = random.Random(20261128)
    refused = 0
    for _ in range(300):
        schema = rng.choice(SEEDS)
        for _ in range(rng.randint(1, 3)):
            schema = _mutated(schema, rng)
        for lenient in (False, True):
            try:
                GrammarCompiler().json_schema(schema, lenient=lenient)
            except GrammarError:
                refused += 1
    assert 0 < refused < 600
