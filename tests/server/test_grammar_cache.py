"""The server's grammar cache shares a compiled grammar between equal schemas, and only between equal ones."""

from __future__ import annotations

from edge_runtime.api.grammar_cache import GrammarCache


def test_schemas_differing_in_property_order_get_their_own_grammars() -> None:
    cache = GrammarCache()
    a_first = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
               "required": ["a", "b"], "additionalProperties": False}
    b_first = {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "integer"}},
               "required": ["a", "b"], "additionalProperties": False}
    assert cache.json_schema(a_first).matches('{"a": 1, "b": 2}')
    assert cache.json_schema(b_first).matches('{"b": 2, "a": 1}')
    assert not cache.json_schema(b_first).matches('{"a": 1, "b": 2}')
    assert cache.json_schema(dict(a_first)) is cache.json_schema(a_first)
    assert len(cache) == 2
