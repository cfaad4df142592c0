"""Constructs compiled for the corpus coverage work (issue 12 item 3): negations of more keywords (pattern,
integers among numbers, items, contains, oneOf, unknown keywords), allOf of two conditionals, two oneOfs or two
patterns, and a $ref alone in allOf kept as one named rule. Each grammar is checked against jsonschema on
values it must accept and values it must reject, written in the grammar's key order."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from edge_runtime.grammar import GrammarError, compile_json_schema
from edge_runtime.grammar.json_schema import json_text


def _agrees(schema: Any, instances: list[Any]) -> None:
    """The grammar accepts exactly the instances jsonschema calls valid (and both kinds are present)."""
    grammar = compile_json_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    verdicts = []
    for instance in instances:
        valid = validator.is_valid(instance)
        verdicts.append(valid)
        assert grammar.matches(json_text(instance)) == valid, (instance, valid)
    assert True in verdicts and False in verdicts


def test_not_pattern_is_the_complement_of_its_automaton() -> None:
    _agrees(
        {"type": "string", "not": {"pattern": "^[a-z]+$"}},
        ["abc", "", "aB", "ab1", "ABC", "a b", "z"],
    )
    _agrees({"not": {"pattern": "x"}}, ["abc", "axb", "x", 3, None, ["x"]])


def test_not_integer_leaves_the_fractions() -> None:
    _agrees({"not": {"type": "integer"}}, [1.5, -0.25, 0.05, 2, 0, -7, "3", None, 1.0])
    _agrees({"oneOf": [{"type": "integer"}, {"type": "number"}]}, [1, 2.5, -3, 0.125, "x"])
    _agrees({"type": "number", "not": {"type": ["integer", "string"]}}, [1.5, 3, "a"])
    with pytest.raises(GrammarError, match="'not'"):
        compile_json_schema({"type": "number", "minimum": 0, "not": {"type": "integer"}})


def test_not_items_is_contains_and_not_contains_is_items() -> None:
    _agrees({"not": {"items": {"type": "string"}}}, [[], ["a"], ["a", 1], [1], [None, "b"], "s", 2])
    _agrees(
        {"type": "array", "not": {"contains": {"type": "integer"}}},
        [[], ["a"], ["a", 1], [1.5], [None, 2], [True]],
    )
    _agrees(
        {"not": {"prefixItems": [{"type": "string"}, {"type": "integer"}]}},
        [[], ["a"], [1], ["a", 2], ["a", "b"], ["a", 2, "c"], {"a": 1}],
    )


def test_not_one_of_is_none_or_two_of_its_branches() -> None:
    _agrees(
        {"not": {"oneOf": [{"type": "string"}, {"minLength": 2}, {"type": "integer"}]}},
        ["a", "ab", 1, 2.5, None, [], "abc"],
    )


def test_a_negation_ignores_unknown_keywords_and_formats_the_specification_does_not_define() -> None:
    _agrees({"not": {"type": "string", "x-kind": {"a": 1}, "format": "color"}}, ["a", 1, None, {}])
    _agrees(
        {
            "oneOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "instanceof": "Thing"},
                {"type": "object", "properties": {"a": {"type": "string"}}},
            ]
        },
        [{"a": 1}, {"a": "x"}, {}, {"a": None}, {"b": 1}],
    )


def test_all_of_two_conditionals_two_one_ofs_and_two_patterns() -> None:
    _agrees(
        {
            "type": "object",
            "properties": {"kind": {"type": "string"}, "size": {"type": "integer"}},
            "allOf": [
                {"if": {"properties": {"kind": {"const": "a"}}}, "then": {"required": ["size"]}},
                {"if": {"properties": {"kind": {"const": "b"}}}, "then": {"properties": {"size": {"maximum": 3}}}},
            ],
        },
        [{"kind": "a", "size": 9}, {"kind": "a"}, {"kind": "b", "size": 2}, {"kind": "b", "size": 5}, {"size": 5}],
    )
    _agrees(
        {
            "allOf": [
                {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                {"oneOf": [{"minimum": 3}, {"maxLength": 2}]},
            ]
        },
        [5, 1, "ab", "abc", None, 2.5],
    )
    _agrees({"allOf": [{"pattern": "^a"}, {"pattern": "b$"}]}, ["ab", "axb", "a", "b", "ba", 3])


def test_a_ref_alone_in_all_of_stays_one_rule_so_recursion_compiles() -> None:
    """patternProperties values reach their schema through `allOf`: a $ref there was merged (inlined) each
    time it was met, so a recursive schema never finished (refused as too deeply nested)."""
    schema = {
        "$defs": {"node": {"type": "object", "patternProperties": {"^c": {"$ref": "#/$defs/node"}}}},
        "$ref": "#/$defs/node",
    }
    nested: dict[str, Any] = {}
    for _ in range(40):
        nested = {"c": nested}
    _agrees(schema, [nested, {"c": {"c": {}}}, {"c": 1}, {"c": {"c": []}}, {"x": 1}])


def test_the_compilers_own_keywords_in_a_callers_schema_are_ignored() -> None:
    grammar = compile_json_schema({"type": "number", "edge-runtime:fractional": True})
    assert grammar.matches("3") and grammar.matches("2.5")


def test_hostname_is_rfc_1123_narrowed() -> None:
    grammar = compile_json_schema({"type": "string", "format": "hostname"})
    label = "a" * 63
    for host, valid in (
        ("www.example.com", True),
        ("1host", True),
        ("a--b.com", True),
        (f"{label}.{label}.{label}", True),
        (".".join(["b" * 30] * 8), True),
        ("", False),
        (".example", False),
        ("example.", False),
        ("-host", False),
        ("host-", False),
        ("host_name", False),
        (f"{label}b.com", False),
        ("XN--aa---o47jg78q", False),
        ("xn--9n2bp8q.xn--9t4b11yi5a", False),  # a valid IDNA name: narrowed out (Punycode is not checked)
        ("example.com\n", False),
    ):
        assert grammar.matches(json_text(host)) == valid, host


def test_lengths_a_format_implies_need_no_automaton() -> None:
    """An e-mail under maxLength 1,024 (or 254) was refused: the format and the length had no automaton
    together. The e-mail rule writes at most 236 characters, so such a maxLength says nothing more."""
    for high in (1024, 254, 236):
        grammar = compile_json_schema({"type": "string", "format": "email", "maxLength": high})
        assert grammar.matches('"ab@example.org"') and not grammar.matches('"ab@"')
    address = "a" * 32 + "." + "b" * 15 + "." + "c" * 15 + "@" + ".".join(["d" * 48] * 3) + "." + "e" * 24
    assert len(address) == 236 and grammar.matches(json_text(address))
    with pytest.raises(GrammarError, match="'maxLength'|'format'"):
        compile_json_schema({"type": "string", "format": "email", "maxLength": 100})


def test_negated_additional_properties_needs_a_witness_property() -> None:
    _agrees(
        {
            "oneOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
                {"type": "object", "properties": {"b": {"type": "string"}}, "additionalProperties": False},
            ]
        },
        [{"a": 1}, {"b": "x"}, {}, {"a": "x"}, {"a": 1, "b": "x"}, {"c": 1}, 3],
    )
    _agrees(
        {"not": {"properties": {"a": {}}, "additionalProperties": {"type": "string"}}},
        [{}, {"a": 1}, {"x": "s"}, {"x": 1}, {"a": 1, "x": 2}, {"a": 1, "x": "s", "y": None}, "s"],
    )


def test_negated_pattern_properties_and_property_names() -> None:
    _agrees(
        {"not": {"patternProperties": {"^x-": {"type": "string"}}}},
        [{}, {"x-a": "s"}, {"x-a": 1}, {"y": 1}, {"y": 1, "x-b": None}, [1]],
    )
    _agrees(
        {"type": "object", "properties": {"id": {"type": "integer"}}, "not": {"propertyNames": {"maxLength": 3}}},
        [{}, {"id": 1}, {"abcd": 1}, {"id": 2, "long": 1}, {"abc": True}],
    )
    with pytest.raises(GrammarError, match="'not'"):
        compile_json_schema({"not": {"additionalProperties": False}, "dependentRequired": {"a": ["b"]}})


def test_not_multiple_of_a_whole_step() -> None:
    _agrees({"not": {"multipleOf": 5}}, [0, 5, -10, 3, -7, 12, 2.5, "a", 105, 104])
    with pytest.raises(GrammarError, match="accepts no value"):  # every integer is a multiple of 1
        compile_json_schema({"type": "integer", "not": {"multipleOf": 1}})
    _agrees({"type": "number", "not": {"multipleOf": 1}}, [1, 0.5, -2.25, 7])
    _agrees({"oneOf": [{"multipleOf": 3}, {"multipleOf": 2}]}, [3, 2, 6, 0, 9, 4, 1, 7.5])


def test_two_witnesses_and_two_excluded_steps_merge() -> None:
    """allOf of two negated objects (or two negated steps) used to be refused as two different internal
    keywords; each object now owes both witnesses (one property may be both), each number avoids both steps."""
    _agrees(
        {
            "allOf": [
                {"not": {"properties": {"a": {}}, "additionalProperties": False}},
                {"not": {"patternProperties": {"^b": {"type": "string"}}}},
            ]
        },
        [{}, {"a": 1}, {"b": 1}, {"bx": "s"}, {"a": 1, "b": 2}, {"c": 1, "b": 2}, {"a": 1, "c": "s"}, 3],
    )
    _agrees({"allOf": [{"not": {"multipleOf": 2}}, {"not": {"multipleOf": 3}}]}, [1, 2, 3, 5, 6, 7, 12, 25, 0.5])


def test_witnesses_beside_property_counts() -> None:
    """One of several keys, each an object of its own (a common oneOf): the branches' negations owe a
    property beside maxProperties 1."""
    branches = [
        {"type": "object", "properties": {name: {"type": "integer"}}, "required": [name], "maxProperties": 1}
        for name in ("a", "b")
    ]
    _agrees(
        {"oneOf": [*branches, {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 2}]},
        [{"a": 1}, {"b": 2}, {"a": 1, "b": 2}, {"c": "x", "d": "y"}, {"c": "x"}, {"a": "x", "c": "y"}, {}],
    )
    _agrees(
        {"type": "object", "maxProperties": 2, "minProperties": 2, "not": {"additionalProperties": {"type": "integer"}}},
        [{"a": 1, "b": 2}, {"a": 1, "b": "x"}, {"a": "x"}, {"a": "x", "b": "y", "c": 1}, {"a": None, "b": 1}],
    )


def test_property_names_of_names_and_their_negations_are_key_automata() -> None:
    _agrees(
        {"type": "object", "properties": {"a": {}}, "propertyNames": {"enum": ["a", "b"]}},
        [{}, {"a": 1}, {"b": 2}, {"a": 1, "b": 2}, {"c": 3}],
    )
    _agrees({"type": "object", "not": {"propertyNames": {"not": {"const": "0"}}}}, [{}, {"0": 1}, {"1": 1}, {"1": 1, "0": 2}])
    _agrees({"type": "object", "not": {"propertyNames": False}}, [{}, {"k": "v"}])


def test_not_an_object_or_array_value() -> None:
    _agrees(
        {"not": {"const": {"a": 1, "b": [True, None]}}},
        [{"a": 1, "b": [True, None]}, {"a": 1}, {"a": 2, "b": [True, None]}, {"a": 1, "b": [True]},
         {"a": 1, "b": [True, None], "c": 0}, {"a": 1, "b": [False, None]}, [1], "x", {}],
    )
    _agrees({"not": {"enum": [[1, 2], "x", {"k": "v"}]}}, [[1, 2], [2, 1], [1], "x", "y", {"k": "v"}, {"k": "w"}, 3])
