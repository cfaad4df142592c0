"""The compile memo's keys for merged schemas: equal content, equal key; any difference, another key; schema
objects of the document by identity."""

from __future__ import annotations

from edge_runtime.grammar.json_schema.merged_keys import MergedKeys


def test_equal_merged_schemas_share_a_key_and_any_difference_splits_them() -> None:
    keys = MergedKeys(originals=set())
    base = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}, "required": ["a"]}
    same = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}, "required": ["a"]}
    assert keys.key(base) == keys.key(same)
    for changed in (
        {**same, "required": ["b"]},
        {**same, "properties": {"a": {"type": "string", "maxLength": 4}}},
        {**same, "properties": {"a": {"type": "string", "maxLength": "3"}}},
        {"required": ["a"], "type": "object", "properties": same["properties"]},  # key order is part of it
        {**same, "additionalProperties": False},
    ):
        assert keys.key(changed) != keys.key(base), changed
    assert keys.key({"enum": [1, [2]]}) != keys.key({"enum": [[1], 2]})
    assert keys.key({"const": True}) != keys.key({"const": 1}) != keys.key({"const": "1"})
    assert keys.key({"const": 1.0}) != keys.key({"const": 1})
    assert keys.key({"const": -0.0}) != keys.key({"const": 0.0})
    assert keys.key({"const": None}) != keys.key({"const": "None"})
    assert keys.key({"enum": {"a": 1}}) != keys.key({"enum": ["a", 1]})


def test_document_schemas_are_keyed_by_identity() -> None:
    first, second = {"type": "integer"}, {"type": "integer"}
    keys = MergedKeys(originals={id(first), id(second)})
    assert keys.key({"allOf": [first]}) == keys.key({"allOf": [first]})
    assert keys.key({"allOf": [first]}) != keys.key({"allOf": [second]})


def test_values_that_are_not_json_are_keyed_by_what_they_print() -> None:
    keys = MergedKeys(originals=set())
    assert keys.key({"x": ({"a": 1}, 2)}) == keys.key({"x": ({"a": 1}, 2)})
    assert keys.key({"x": ({"a": 1}, 2)}) != keys.key({"x": ({"a": 2}, 2)})
