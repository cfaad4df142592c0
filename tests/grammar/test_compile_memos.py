"""What makes a schema compile cheaper must not change what it accepts: rules parsed body by body (with the
bodies memoized across compiles) give the syntax the whole text gives, and the compiler's per-compile memos
(sub-schemas a merge rebuilds, key tries, enum checks) give the grammar a fresh compile gives."""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import pytest
from grammar_cases import load_llamacpp

from edge_runtime.grammar import GrammarError, compile_gbnf, compile_json_schema
from edge_runtime.grammar.gbnf import parse_gbnf, parse_gbnf_rules
from edge_runtime.grammar.gbnf_text import GrammarRules, rules_text
from edge_runtime.grammar.grammar import compile_rules
from edge_runtime.grammar.ir import compile_syntax
from edge_runtime.grammar.json_schema import json_schema_to_gbnf, json_text
from edge_runtime.grammar.json_schema.compiler import SchemaCompiler
from edge_runtime.grammar.json_schema.refs import SchemaRegistry

SCHEMAS = [case["schema"] for case in load_llamacpp("json_schema_to_grammar.json")["cases"]] + [
    case["schema"] for case in load_llamacpp("grammar_integration.json")["cases"] if case["kind"] == "schema"
]


def _rules(schema: Any) -> GrammarRules:
    """The compiler's rules, read back from its text (it writes one rule per line)."""
    try:
        text, _ = json_schema_to_gbnf(schema, lenient=True)
    except GrammarError:
        return []
    return [(name, body) for name, body in (line.split(" ::= ", 1) for line in text.splitlines())]


def test_rules_parse_to_the_syntax_of_their_text() -> None:
    compared = 0
    for schema in SCHEMAS:
        rules = _rules(schema)
        if not rules:
            continue
        for _ in range(2):  # the second parse takes the memoized bodies
            by_rule = parse_gbnf_rules(rules)
            whole = parse_gbnf(rules_text(rules))
            assert [rule.name for rule in by_rule.rules] == [rule.name for rule in whole.rules]
            assert by_rule.to_gbnf() == whole.to_gbnf()  # equal but for positions
            flat_by_rule, flat_whole = compile_syntax(by_rule), compile_syntax(whole)
            for array in ("kinds", "values", "rule_alts", "alt_starts", "byte_classes"):
                assert (getattr(flat_by_rule, array) == getattr(flat_whole, array)).all(), array
        compared += 1
    assert compared >= 60


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ([("root", "undefined-rule")], "undefined rule 'undefined-rule'"),
        ([("root", '"a"'), ("root", '"b"')], "rule 'root' is defined twice"),
        ([("start", '"a"')], "no 'root' rule"),
        ([("root", '"a" )')], "expecting newline or end"),
        ([("root", '"unterminated')], "unterminated string literal"),
        ([("bad name", '"a"')], "expecting a rule name"),
    ],
)
def test_rules_are_checked_as_text_is(rules: GrammarRules, reason: str) -> None:
    with pytest.raises(GrammarError, match=reason):
        compile_rules(rules)
    with pytest.raises(GrammarError):
        compile_gbnf(rules_text(rules))


def test_an_error_names_the_rule_line() -> None:
    with pytest.raises(GrammarError) as raised:
        compile_rules([("root", "a"), ("a", '"x" b')])
    assert (raised.value.line, raised.value.reason) == (2, "undefined rule 'b'")


def _base(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"kind": {"const": kind}, "id": {"type": "integer", "minimum": 0}, "tag": {"$ref": "#/$defs/tag"}},
        "required": ["kind", "id"],
    }


MERGED_SCHEMA: dict[str, Any] = {
    "$defs": {
        "tag": {"type": "string", "enum": ["a", "b", "true", "false"], "not": {"enum": ["true", "false"]}},
        "common": {"properties": {"note": {"type": "string", "maxLength": 3}}},
    },
    "anyOf": [
        {"allOf": [{"$ref": "#/$defs/common"}, _base(kind)]} for kind in ("x", "y", "z")
    ],
}
"""Three branches that each merge the same `common` and `tag`: the compiler meets each merged sub-schema
(and each `tag` enum check) three times and compiles it once."""


def _instances(seed: int) -> list[Any]:
    rng = random.Random(seed)
    out = []
    for _ in range(300):
        item: dict[str, Any] = {"kind": rng.choice("xyzw"), "id": rng.choice([0, 3, -1])}
        if rng.random() < 0.6:
            item["tag"] = rng.choice(["a", "b", "true", "c"])
        if rng.random() < 0.5:
            item["note"] = rng.choice(["", "ab", "abcd"])
        if rng.random() < 0.2:
            del item["id"]
        out.append(item)
    return out


def test_memoized_merges_accept_what_the_schema_accepts() -> None:
    grammar = compile_json_schema(MERGED_SCHEMA)
    validator = jsonschema.Draft202012Validator(MERGED_SCHEMA)
    verdicts = set()
    for instance in _instances(7):
        valid = validator.is_valid(instance)
        verdicts.add(valid)
        # properties in schema order: kind, id, tag, then note (common's property comes first in the merge)
        ordered = {k: instance[k] for k in ("note", "kind", "id", "tag") if k in instance}
        assert grammar.matches(json_text(ordered)) == valid, (instance, valid)
    assert verdicts == {True, False}


def test_a_recompile_in_the_same_process_is_the_same_grammar() -> None:
    """The second compile takes every rule body from the parse memo; it must accept exactly what the first
    does, here over the instances of the merged schema and the printed text."""
    first = compile_json_schema(MERGED_SCHEMA)
    second = compile_json_schema(MERGED_SCHEMA)
    assert first.source == second.source
    for instance in _instances(11):
        ordered = {k: instance[k] for k in ("note", "kind", "id", "tag") if k in instance}
        assert first.matches(json_text(ordered)) == second.matches(json_text(ordered))


def test_lenient_names_every_pointer_of_a_repeated_unenforced_schema() -> None:
    """A memoized expression is reused only when it left nothing unenforced, so each place a refused keyword
    stands is still named."""
    refused = {"type": "array", "uniqueItems": True}
    schema = {
        "type": "object",
        "properties": {"a": {"allOf": [refused, {"maxItems": 3}]}, "b": {"allOf": [refused, {"maxItems": 3}]}},
    }
    grammar = compile_json_schema(schema, lenient=True)
    assert len(grammar.unenforced) == 2
    assert {pointer.split(" at ")[1] for pointer in grammar.unenforced} == {"#/properties/a", "#/properties/b"}


def test_a_merge_of_disjoint_types_accepts_nothing_and_compiles_no_further() -> None:
    """allOf over types no value has at once is False before anything else merges: the rest (here two
    different formats, which a grammar cannot combine, whichever comes first) is never compiled, and the
    alternatives beside it compile strictly. oneOf made exclusive meets this all the time (Github_medium o9802: 8,707
    of 11,717 merges)."""
    empty = {
        "allOf": [
            {"type": "string", "format": "email", "minLength": 3},
            {"format": "date", "type": "integer", "minimum": 0},
        ]
    }
    schema = {"anyOf": [empty, {"type": "boolean"}, {"type": ["number", "string"], "allOf": [{"type": "integer"}]}]}
    grammar = compile_json_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for text in ("true", "false", "1", "-3", '"a"', '"abc"', "1.5", "null"):
        assert grammar.matches(text) == validator.is_valid(json.loads(text)), text
    with pytest.raises(GrammarError, match="accepts no value"):
        compile_json_schema(empty)


def test_merges_that_leave_nothing_to_accept_are_false() -> None:
    """What the compile of their schemas would find in the end, merges say at once, so nothing under them is
    compiled (Github_medium o65942: 4,842 of 5,202 merged objects accepted nothing; 1.5 s -> 0.4 s)."""
    compiler = SchemaCompiler(SchemaRegistry(None), lenient=False)
    record = {"type": "object", "required": ["kind"], "properties": {"kind": {"enum": ["a", "b"]}}}
    assert compiler.merge(record, {"properties": {"kind": False}}, "#") is False
    assert compiler.merge({"type": ["string", "null"]}, {"type": "integer"}, "#") is False
    # not False where a value is left: non-objects beside the forbidden property, a property merely optional
    assert compiler.merge({**record, "type": ["object", "null"]}, {"properties": {"kind": False}}, "#") is not False
    assert compiler.merge({"type": "object"}, {"properties": {"kind": False}}, "#") is not False
    assert compiler.merge({"type": "number"}, {"type": ["integer", "string"]}, "#")["type"] == ["integer"]
