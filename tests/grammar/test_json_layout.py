"""The canonical JSON layout the API routes generate in (`JsonLayout`): exactly `json_text`'s ", " and ": ", so
every structural token is forced; the default layout ("any") keeps the model's bounded choice of whitespace."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from edge_runtime.grammar import GrammarCompiler
from edge_runtime.grammar.json_schema import (
    compile_json_object,
    compile_json_schema,
    json_schema_to_gbnf,
    json_text,
)

RECORD = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "point": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "integer"}], "items": False},
        "flags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True},
        "seen": {"type": "array", "contains": {"const": 1}, "items": {"type": "integer"}},
        "meta": {"type": "object", "properties": {"k": {"const": {"x": [1, {}], "y": []}}}, "required": ["k"]},
        "free": {},
    },
    "required": ["name"],
}

VALUES: list[dict[str, Any]] = [
    {"name": "a"},
    {"name": "a", "tags": [], "point": [1, -2]},
    {"name": "a, b: c", "tags": ["x", "y"], "flags": ["b", "a"], "seen": [3, 1]},
    {"name": "", "meta": {"k": {"x": [1, {}], "y": []}}},
    {"name": "z", "free": {"deep": [{"a": None}, [], True, 1.5]}},
    {"name": "z", "extra": {"q": [1, 2]}},
]


def _layouts(value: Any) -> list[str]:
    """Other layouts of `value`, each valid JSON for it."""
    return [
        json.dumps(value, separators=(",", ":"), ensure_ascii=False),
        json.dumps(value, indent=2, ensure_ascii=False),
        json_text(value).replace("{", "{ ", 1),
    ]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_canonical_layout_takes_json_text_only(value: dict[str, Any]) -> None:
    canonical = compile_json_schema(RECORD, layout="canonical")
    free = compile_json_schema(RECORD)
    assert canonical.matches(json_text(value))
    assert free.matches(json_text(value))
    for other in _layouts(value):
        if other != json_text(value):
            assert not canonical.matches(other), other
            assert free.matches(other), other


def test_canonical_grammars_have_no_whitespace_rule() -> None:
    text, _ = json_schema_to_gbnf(RECORD, layout="canonical")
    assert not re.search(r"\bws\b", text)
    assert re.search(r"^ws ::=", json_schema_to_gbnf(RECORD)[0], re.MULTILINE)


def test_json_object_mode_in_the_canonical_layout() -> None:
    grammar = compile_json_object(layout="canonical")
    value = {"a": [1, {"b": None}], "c": {}, "d": "x: y, z"}
    assert grammar.matches(json_text(value))
    assert not any(grammar.matches(other) for other in _layouts(value))
    assert compile_json_object().matches(json.dumps(value, indent=2))


def test_the_layout_is_part_of_the_cache_key() -> None:
    grammars = GrammarCompiler()
    canonical = grammars.json_schema(RECORD, closed_objects=True, layout="canonical")
    free = grammars.json_schema(RECORD, closed_objects=True)
    assert canonical is not free
    assert grammars.json_schema(RECORD, closed_objects=True, layout="canonical") is canonical
    assert grammars.json_object(layout="canonical") is not grammars.json_object()
    assert not canonical.matches('{"name":"a"}') and free.matches('{"name":"a"}')
