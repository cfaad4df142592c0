"""The cycle collector is paused while grammars compile, and resumes after the last overlapping compile."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from edge_runtime.grammar import compile_json_schema
from edge_runtime.grammar.collector import collector_paused


@pytest.fixture()
def collector_enabled() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_paused_inside_and_resumed_after(collector_enabled: None) -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_resume_after_the_last(collector_enabled: None) -> None:
    first_inside = threading.Event()
    second_done = threading.Event()
    seen: list[bool] = []

    def second() -> None:
        first_inside.wait()
        with collector_paused():
            pass
        seen.append(gc.isenabled())
        second_done.set()

    other = threading.Thread(target=second)
    other.start()
    with collector_paused():
        first_inside.set()
        second_done.wait()
    other.join()
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_disabled_by_someone_else_stays_disabled(collector_enabled: None) -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_a_failed_compile_resumes_the_collector(collector_enabled: None) -> None:
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("compile failed")
    assert gc.isenabled()


def test_a_compiled_schema_keeps_its_grammar_text_not_a_parse_tree(collector_enabled: None) -> None:
    grammar = compile_json_schema({"type": "object", "properties": {"name": {"type": "string"}}})
    assert isinstance(grammar.source, str)
    assert grammar.syntax.to_gbnf() == grammar.to_gbnf()
    assert gc.isenabled()


_SHAPES: list[dict[str, object]] = [
    {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]},
    {"type": "object", "properties": {"a": {"type": "string"}}, "minProperties": 1, "maxProperties": 3},
    {"type": "object", "properties": {"a": {}, "b": {}}, "dependentRequired": {"a": ["b"]}},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "null"}], "minItems": 1, "maxItems": 4},
    {"type": "string", "pattern": "^[a-z]{2,5}$", "maxLength": 4},
    {"type": "number", "multipleOf": 0.5, "minimum": 1, "maximum": 20},
    {"anyOf": [{"$ref": "#/$defs/p"}, {"type": "null"}], "$defs": {"p": {"type": "object", "not": {"required": ["x"]}}}},
]


@pytest.mark.parametrize("schema", _SHAPES)
def test_a_compile_leaves_no_reference_cycles(schema: dict[str, object]) -> None:
    """What a compile made is freed by reference counting when it returns: cyclic garbage would wait for a
    collection, which holds the GIL over every object of the compile (a recursive closure once kept a whole
    compiler's memos alive that way)."""
    gc.collect()
    gc.disable()
    try:
        compile_json_schema(schema)
        assert gc.collect() == 0
    finally:
        gc.enable()
