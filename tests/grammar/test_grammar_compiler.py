"""The grammar compiler's cache: it shares a compiled grammar between equal sources, and only between equal ones."""

from __future__ import annotations

import pytest

from edge_runtime.grammar import GrammarCompiler, GrammarError

A_FIRST = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
           "required": ["a", "b"], "additionalProperties": False}
B_FIRST = {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "integer"}},
           "required": ["a", "b"], "additionalProperties": False}


def test_schemas_differing_in_property_order_get_their_own_grammars() -> None:
    grammars = GrammarCompiler()
    assert grammars.json_schema(A_FIRST).matches('{"a": 1, "b": 2}')
    assert grammars.json_schema(B_FIRST).matches('{"b": 2, "a": 1}')
    assert not grammars.json_schema(B_FIRST).matches('{"a": 1, "b": 2}')
    assert grammars.json_schema(dict(A_FIRST)) is grammars.json_schema(A_FIRST)
    assert len(grammars) == 2


def test_options_are_part_of_the_key() -> None:
    grammars = GrammarCompiler()
    open_ = {"type": "object", "properties": {"a": {}}, "dependentSchemas": {"a": {"not": {"type": "null"}}}}
    strict = grammars.json_schema(open_)
    lenient = grammars.json_schema(open_, lenient=True)
    closed = grammars.json_schema(open_, closed_objects=True)
    assert len({id(strict), id(lenient), id(closed)}) == 3
    assert strict.matches('{"a": 1, "x": 2}') and not closed.matches('{"a": 1, "x": 2}')
    assert grammars.json_schema(open_, closed_objects=True) is closed


def test_gbnf_choices_and_json_object_are_cached_too() -> None:
    grammars = GrammarCompiler()
    assert grammars.gbnf('root ::= "a"') is grammars.gbnf('root ::= "a"')
    choice = grammars.choice(["yes", "no\u2028"])
    assert choice.matches("no\u2028") and not choice.matches("maybe")
    assert grammars.choice(["yes", "no\u2028"]) is choice
    assert grammars.json_object() is grammars.json_object()
    assert grammars.json_object().matches('{"a": [1]}') and not grammars.json_object().matches("[]")
    assert len(grammars) == 3


def test_the_least_recently_used_grammar_goes_first() -> None:
    grammars = GrammarCompiler(max_entries=2)
    first = grammars.gbnf('root ::= "1"')
    grammars.gbnf('root ::= "2"')
    assert grammars.gbnf('root ::= "1"') is first  # now the most recent
    grammars.gbnf('root ::= "3"')
    assert len(grammars) == 2
    assert grammars.gbnf('root ::= "1"') is first
    with pytest.raises(ValueError, match="max_entries"):
        GrammarCompiler(max_entries=0)


def test_a_resolver_bypasses_the_cache() -> None:
    grammars = GrammarCompiler()
    documents = {"https://example.com/int": {"type": "integer"}}
    schema = {"$ref": "https://example.com/int"}
    first = grammars.json_schema(schema, resolver=documents.__getitem__)
    assert first.matches("7")
    assert grammars.json_schema(schema, resolver=documents.__getitem__) is not first
    assert len(grammars) == 0


def test_bad_sources_raise_and_are_not_cached() -> None:
    grammars = GrammarCompiler()
    with pytest.raises(GrammarError, match="not JSON"):
        grammars.json_schema({"x": {1, 2}})  # type: ignore[dict-item]
    with pytest.raises(GrammarError):
        grammars.gbnf("root ::= missing")
    assert len(grammars) == 0


def test_written_grammars_are_written_once_per_source() -> None:
    grammars = GrammarCompiler()
    writes: list[str] = []

    def write() -> tuple[str, tuple[str, ...]]:
        writes.append("written")
        return 'root ::= "x"', ("something at #",)

    first = grammars.written("test", {"source": [1, "é"]}, write)
    assert grammars.written("test", {"source": [1, "é"]}, write) is first
    assert first.matches("x") and first.unenforced == ("something at #",)
    assert len(writes) == 1
    grammars.written("other-kind", {"source": [1, "é"]}, write)
    assert len(writes) == 2


def test_a_tool_call_grammar_is_compiled_once_for_equal_tools() -> None:
    from edge_runtime.api.tool_use import ToolUse, tool_constraint
    from edge_runtime.engine.tool_calls import ToolSpec

    def use(maximum: int) -> ToolUse:
        parameters = {"type": "object", "properties": {"n": {"type": "integer", "maximum": maximum}}}
        return ToolUse((ToolSpec("count", "counts", parameters),), "json", "required", False, False)

    grammars = GrammarCompiler()
    first = tool_constraint(use(5), grammars).grammar
    assert tool_constraint(use(5), grammars).grammar is first
    assert tool_constraint(use(6), grammars).grammar is not first
    assert len(grammars) == 2
