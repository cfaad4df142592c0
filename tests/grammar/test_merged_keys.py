"""The compile memo's keys (native/schema_key.c): equal content, equal key, wherever the schema sits; a
schema's annotations are no part of it; any other difference, another key. Checked against a plain canonical
form written here."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.grammar.json_schema.keywords import ANNOTATIONS, SCHEMA_LISTS, SCHEMA_MAPS, SCHEMA_VALUES
from edge_runtime.grammar.json_schema.merged_keys import MergedKeys


def test_equal_schemas_share_a_key_and_any_difference_splits_them() -> None:
    keys = MergedKeys()
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


def test_annotations_are_no_part_of_a_schemas_key_and_a_property_named_like_one_is() -> None:
    keys = MergedKeys()
    plain = {"type": "object", "properties": {"a": {"type": "string"}}, "items": [{"type": "integer"}]}
    annotated = {
        "title": "T",
        "type": "object",
        "description": "x",
        "properties": {"a": {"type": "string", "description": "the a", "default": "b"}},
        "$defs": {"unused": {"type": "null"}},
        "items": [{"type": "integer", "examples": [1, 2]}],
    }
    assert keys.key(plain) == keys.key(annotated)
    assert keys.key({"anyOf": [{"type": "null", "$comment": "c"}]}) == keys.key({"anyOf": [{"type": "null"}]})
    assert keys.key({"not": {"deprecated": True}}) == keys.key({"not": {}})
    # names and values are not schemas: what looks like an annotation there is content
    assert keys.key({"properties": {"title": {}}}) != keys.key({"properties": {}})
    assert keys.key({"const": {"title": "a"}}) != keys.key({"const": {"title": "b"}})
    assert keys.key({"enum": [{"description": 1}]}) != keys.key({"enum": [{}]})
    assert keys.key({"required": ["default"]}) != keys.key({"required": []})


def test_values_that_are_not_json_are_keyed_by_what_they_print() -> None:
    keys = MergedKeys()
    assert keys.key({"x": ({"a": 1}, 2)}) == keys.key({"x": ({"a": 1}, 2)})
    assert keys.key({"x": ({"a": 1}, 2)}) != keys.key({"x": ({"a": 2}, 2)})


def test_a_schema_nested_past_the_recursion_limit_is_a_recursion_error() -> None:
    deep: dict[str, Any] = {}
    for _ in range(100_000):
        deep = {"not": deep}
    try:
        MergedKeys().key(deep)
    except RecursionError:
        return
    raise AssertionError("keyed a schema nested 100,000 deep")


def _canonical(value: Any, schema: bool) -> Any:
    """The plain form the key stands for: nested tuples, annotations dropped where `value` is a schema."""
    if isinstance(value, dict):
        if not schema:
            return ("dict", *((name, _canonical(item, False)) for name, item in value.items()))
        parts: list[Any] = ["schema"]
        for name, item in value.items():
            if name in ANNOTATIONS:
                continue
            if name in SCHEMA_MAPS and isinstance(item, dict):
                part: Any = ("map", *((n, _canonical(sub, True)) for n, sub in item.items()))
            elif (name in SCHEMA_LISTS or name == "items") and isinstance(item, list):
                part = ("list", *(_canonical(sub, True) for sub in item))
            else:
                part = _canonical(item, name in SCHEMA_VALUES or name == "items")
            parts.append((name, part))
        return tuple(parts)
    if isinstance(value, list):
        return ("list", *(_canonical(item, False) for item in value))
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, int):
        return (type(value).__name__, value)
    return (type(value).__name__, repr(value))


_NAMES = ["type", "title", "description", "a", "properties", "anyOf", "items", "not", "enum", "const", "$defs"]
_SCALARS = st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1, 1.0, -0.0, 0.0]), st.sampled_from(["a", "b"]))
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_NAMES), inner, max_size=3)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(_NAMES), _JSON, max_size=4), min_size=2, max_size=6))
def test_keys_are_equal_exactly_when_canonical_forms_are(schemas: list[dict[str, Any]]) -> None:
    keys = MergedKeys()
    for first in schemas:
        for second in schemas:
            assert (keys.key(first) == keys.key(second)) == (
                _canonical(first, True) == _canonical(second, True)
            ), (first, second)


def test_another_thread_runs_while_a_large_schema_is_keyed() -> None:
    """Keying reads Python objects, so it holds the GIL; it lets it go every 1,024 nodes, so a large schema
    (hundreds of thousands of nodes) does not stop the server's other threads until it is done. Behaviour,
    not a time bound: the other thread runs in the middle half of the call."""
    schema = {"anyOf": [{"properties": {f"p{i}": {"type": "string", "maxLength": i}}} for i in range(150_000)]}
    stamps: list[float] = []
    done = threading.Event()

    def other() -> None:
        while not done.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    worker = threading.Thread(target=other)
    worker.start()
    try:
        time.sleep(0.01)
        start = time.perf_counter()
        MergedKeys().key(schema)
        end = time.perf_counter()
    finally:
        done.set()
        worker.join()
        sys.setswitchinterval(interval)
    quarter = (end - start) / 4
    assert any(start + quarter < stamp < end - quarter for stamp in stamps)
