"""What a schema's grammar writes is valid under the schema: random sentences of every compiling schema of the
JSON-Schema-Test-Suite and of llama.cpp's schema cases, checked by an independent validator (`jsonschema`).

A sentence is a random walk over the grammar's bytes that stops once the grammar is complete, leaning towards
ASCII and towards closing characters so that walks end. This finds false accepts the suite's fixed instances
miss: anything the grammar allows, a model can write.
"""

from __future__ import annotations

import decimal
import json
import random
import re
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
import referencing.exceptions
from grammar_cases import load_llamacpp
from test_schema_suite import REPORT

from edge_runtime.grammar import Grammar, GrammarError, compile_json_schema
from edge_runtime.grammar.automaton import DEAD

SENTENCES_PER_SCHEMA = 12
CLOSERS = frozenset(b'"]}0123456789')


def random_sentence(grammar: Grammar, rng: random.Random, limit: int = 300) -> bytes | None:
    """A sentence of `grammar`, or None when the walk did not end within `limit` bytes."""
    automaton = grammar.automaton
    state, out = automaton.initial, bytearray()
    for _ in range(limit):
        allowed = automaton.machine.allowed_bytes(automaton.stacks(state))
        if automaton.is_complete(state) and (rng.random() < 0.3 or not allowed):
            return bytes(out)
        choices = [byte for byte in range(256) if allowed >> byte & 1]
        assert choices, f"the walk reached a state with no way on after {bytes(out)!r}"
        ascii_only = [byte for byte in choices if byte < 0x80]
        closers = [byte for byte in ascii_only if byte in CLOSERS]
        if closers and rng.random() < 0.4:
            pool = closers
        else:
            pool = ascii_only if ascii_only and rng.random() < 0.9 else choices
        byte = rng.choice(pool)
        state = automaton.next_state(state, byte)
        assert state != DEAD
        out.append(byte)
    return None


def _schemas() -> list[tuple[str, Any]]:
    found = []
    for relative in REPORT.suite_files():
        for group in json.loads((REPORT.suite_dir() / relative).read_text(encoding="utf-8")):
            found.append((f"{relative}: {group['description']}", group["schema"]))
    for case in load_llamacpp("json_schema_to_grammar.json")["cases"]:
        if case["expected_status"] == "SUCCESS":
            found.append((f"llama.cpp: {case.get('name', '')}", case["schema"]))
    return found


def exact_json(text: str | bytes) -> Any:
    """JSON with its decimals kept exact (multipleOf is then judged exactly, not by float division); floats
    only for exponents beyond what Decimal holds."""
    try:
        with _exact():
            return json.loads(text, parse_float=Decimal)
    except decimal.InvalidOperation:
        return json.loads(text)


_EXACT_CONTEXT = decimal.Context(prec=2000, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _exact() -> decimal._ContextManager:
    return decimal.localcontext(_EXACT_CONTEXT)


def judge(validator: jsonschema.Draft202012Validator, text: str | bytes) -> bool | None:
    """Whether the validator finds the JSON text valid; None when it cannot judge exactly (a number too long,
    or an exponent too big, for an exact multipleOf check)."""
    try:
        with _exact():
            return validator.is_valid(exact_json(text))
    except (decimal.InvalidOperation, TypeError):
        return None


def _python_regex_differs(schema: Any, sentence: str) -> bool:
    """ECMAScript's \\w, \\d, \\s and \\b are not Python's for non-ASCII text (the validator uses Python's re);
    the grammar follows ECMAScript, as the suite's ecmascript-regex cases ask."""
    return '"pattern' in json.dumps(schema) and not sentence.isascii()


def test_every_sentence_a_schema_grammar_writes_is_valid() -> None:
    rng = random.Random(20261124)
    compiled = checked = 0
    for name, schema in _schemas():
        try:
            grammar = compile_json_schema(schema, resolver=REPORT.remote_document)
        except GrammarError:
            continue
        compiled += 1
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError:
            continue  # llama.cpp's cases hold a few schemas the metaschema refuses; the validator cannot judge
        validator = jsonschema.Draft202012Validator(exact_json(json.dumps(schema)))
        for _ in range(SENTENCES_PER_SCHEMA):
            sentence = random_sentence(grammar, rng)
            if sentence is None:
                continue
            text = sentence.decode("utf-8")
            if _python_regex_differs(schema, text):
                continue
            try:
                valid = judge(validator, text)
            except referencing.exceptions.Unresolvable:
                break  # a remote reference the validator cannot fetch offline
            except re.error:
                break  # an ECMAScript pattern Python's re cannot read
            if valid is None:
                continue
            assert valid, f"{name}: the grammar wrote {text!r}, which the schema does not allow"
            checked += 1
    assert compiled > 350 and checked > 3000


@pytest.mark.parametrize("seed", range(3))
def test_sentences_of_schemas_with_new_keywords_are_valid(seed: int) -> None:
    """multipleOf (with and without bounds), uniqueItems over known values, not and if/then/else."""
    rng = random.Random(seed)
    schemas: list[dict[str, Any]] = [
        {"type": "number", "multipleOf": 1.5},
        {"type": "number", "multipleOf": 0.25, "minimum": -3, "exclusiveMaximum": 7.5},
        {"type": "number", "minimum": 0.005, "maximum": 12.5, "multipleOf": 0.01},
        {"type": "integer", "multipleOf": 0.3},
        {"type": "array", "items": {"enum": ["a", "b", 1, 1.5, None, True]}, "uniqueItems": True, "minItems": 2},
        {
            "type": "object",
            "properties": {
                "price": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000, "multipleOf": 0.01},
                "sizes": {"type": "array", "items": {"enum": ["S", "M", "L"]}, "uniqueItems": True},
            },
            "required": ["price", "sizes"],
        },
        {"not": {"enum": ["", "n/a", 0, None]}},
        {
            "type": "object",
            "properties": {"country": {"enum": ["US", "CA"]}, "zip": {"type": "string"}},
            "required": ["country", "zip"],
            "if": {"properties": {"country": {"const": "US"}}},
            "then": {"properties": {"zip": {"pattern": "^[0-9]{5}$"}}},
            "else": {"properties": {"zip": {"minLength": 6, "maxLength": 7}}},
        },
    ]
    for schema in schemas:
        grammar = compile_json_schema(schema)
        validator = jsonschema.Draft202012Validator(exact_json(json.dumps(schema)))
        for _ in range(40):
            sentence = random_sentence(grammar, rng)
            if sentence is not None:
                assert judge(validator, sentence) is not False, f"{schema}: {sentence!r}"
