"""The JSON Schema compiler against llama.cpp's schema cases (following JSON Schema where llama.cpp departs
from it), exact number ranges, patterns, formats, references, refusals and bounded whitespace."""

from __future__ import annotations

import itertools
import json
import random
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from grammar_cases import load_llamacpp

from edge_runtime.grammar import Grammar, GrammarError, compile_gbnf
from edge_runtime.grammar.automaton import DEAD
from edge_runtime.grammar.json_schema import (
    compile_json_object,
    compile_json_schema,
    json_schema_to_gbnf,
    json_text,
)
from edge_runtime.grammar.json_schema.char_sets import complement, json_char_set
from edge_runtime.grammar.json_schema.number_ranges import decimal_range, integer_range
from edge_runtime.grammar.json_schema.regex import pattern_to_gbnf

INTEGRATION = [
    case for case in load_llamacpp("grammar_integration.json")["cases"] if case["kind"] == "schema"
]
TO_GRAMMAR = load_llamacpp("json_schema_to_grammar.json")["cases"]

LENIENT_CASES = {"required props": ("uniqueItems at #/properties/tags",)}
"""Integration cases whose schema holds a keyword no grammar enforces: compiled leniently, and the report
must name it."""


def _compiled(case: dict[str, Any]) -> Grammar:
    expected = LENIENT_CASES.get(case["name"])
    if expected is None:
        return compile_json_schema(case["schema"])
    with pytest.raises(GrammarError, match=expected[0].split()[0]):
        compile_json_schema(case["schema"])
    grammar = compile_json_schema(case["schema"], lenient=True)
    assert grammar.unenforced == expected
    return grammar


def _in_schema_order(schema: dict[str, Any], text: str) -> bool:
    """Whether an object instance writes its declared properties in schema order, extras after them: the
    one layout the grammar generates (JSON Schema itself ignores order)."""
    try:
        pairs = json.loads(text, object_pairs_hook=lambda items: items)
    except json.JSONDecodeError:
        return True
    if not isinstance(pairs, list):
        return True
    declared = list(schema.get("properties", {}))
    keys = [key for key, _ in pairs]
    positions = [declared.index(k) if k in declared else len(declared) for k in keys]
    return positions == sorted(positions)


def _samples(case: dict[str, Any], key: str) -> list[str]:
    return [s for s in case[key] if isinstance(s, str)]


@pytest.mark.parametrize("case", INTEGRATION, ids=lambda c: c["name"] or "unnamed")
def test_llamacpp_schema_cases(case: dict[str, Any]) -> None:
    grammar = _compiled(case)
    schema = case["schema"]
    departures = {
        d["string"]: d["json_schema_valid"] for d in case.get("differs_from_json_schema_semantics") or []
    }
    for text in _samples(case, "passing"):
        assert grammar.matches(text), text
    for text in _samples(case, "failing"):
        if text not in departures:
            assert not grammar.matches(text), text
            continue
        # Where llama.cpp departs from JSON Schema, we follow JSON Schema, within the layout we generate:
        # no whitespace around the top value, declared properties in schema order.
        expected = departures[text] and _in_schema_order(schema, text)
        assert grammar.matches(text.strip()) == expected, text


def test_llamacpp_departures_we_follow() -> None:
    """The JSON-Schema-valid strings llama.cpp rejects that we accept: 16+ digit integers, -0, and {} being
    any value. The seven it rejects for property order stay rejected: the grammar writes declared properties
    in schema order (see edge_runtime.grammar.json_schema)."""
    accepted = rejected = 0
    for case in INTEGRATION:
        grammar = _compiled(case)
        for departure in case.get("differs_from_json_schema_semantics") or []:
            text = departure["string"].strip()
            if _in_schema_order(case["schema"], text):
                assert grammar.matches(text), text
                accepted += 1
            else:
                assert not grammar.matches(text), text
                rejected += 1
    assert (accepted, rejected) == (10, 7)


@pytest.mark.parametrize("case", TO_GRAMMAR, ids=lambda c: c["name"])
def test_json_schema_to_grammar_cases_compile_or_are_refused(case: dict[str, Any]) -> None:
    if case["expected_status"] == "SUCCESS":
        grammar = compile_json_schema(case["schema"])
        assert isinstance(grammar, Grammar)
    else:
        with pytest.raises(GrammarError, match="type"):
            compile_json_schema(case["schema"])


def test_json_schema_to_grammar_counts() -> None:
    statuses = [case["expected_status"] for case in TO_GRAMMAR]
    assert (statuses.count("SUCCESS"), statuses.count("FAILURE")) == (68, 2)


# ------------------------------------------------------------------------------------------ numbers


def _expression_grammar(expression: str) -> Grammar:
    return compile_gbnf(f"root ::= {expression}\n")


def _random_integer_ranges() -> list[tuple[int | None, int | None]]:
    rng = random.Random(20261124)
    ranges: list[tuple[int | None, int | None]] = [(0, None), (None, 0), (-1, 1), (0, 0), (None, None)]
    for _ in range(24):
        a = rng.randint(-5000, 5000)
        b = rng.randint(-5000, 5000)
        low, high = min(a, b), max(a, b)
        ranges.append(
            (rng.choice([low, None]), high) if rng.random() < 0.3 else (low, rng.choice([high, None]))
        )
    return ranges


@pytest.mark.parametrize("low, high", _random_integer_ranges())
def test_integer_ranges_are_exact_near_their_bounds(low: int | None, high: int | None) -> None:
    grammar = _expression_grammar(integer_range(low, high) or '"x"')
    probes = set(range(-120, 121))
    for bound in (low, high):
        if bound is not None:
            probes.update(range(bound - 120, bound + 121))
            probes.update({bound * 10, bound * 10 + 9, -bound})
    for value in probes:
        expected = (low is None or value >= low) and (high is None or value <= high)
        assert grammar.matches(str(value)) == expected, value
    zero_in_range = (low is None or low <= 0) and (high is None or high >= 0)
    assert grammar.matches("-0") == zero_in_range
    for bad in ("00", "01", "-01", "+1", "1.0", ""):
        assert not grammar.matches(bad), bad


def test_integer_ranges_have_no_width_cap() -> None:
    huge = 10**40 + 7
    grammar = _expression_grammar(integer_range(-huge, huge) or "")
    assert grammar.matches(str(huge)) and grammar.matches(str(-huge)) and grammar.matches(str(huge - 1))
    assert not grammar.matches(str(huge + 1)) and not grammar.matches(str(-huge - 1))
    unbounded = compile_json_schema({"type": "integer"})
    assert unbounded.matches("1" + "0" * 60) and unbounded.matches("-0")
    assert integer_range(5, 4) is None


@pytest.mark.parametrize(
    "low, low_inclusive, high, high_inclusive",
    [
        ("0", True, None, True),
        ("0", False, None, True),
        (None, True, "0", False),
        ("1.5", True, "3", True),
        ("-2.5", False, "0.05", True),
        ("0.05", True, "0.1", False),
        ("-3", True, "-1.5", False),
        ("2.25", True, "2.25", True),
        ("-100.125", True, "99.9", False),
    ],
)
def test_decimal_ranges_are_exact(
    low: str | None, low_inclusive: bool, high: str | None, high_inclusive: bool
) -> None:
    lower = None if low is None else Decimal(low)
    upper = None if high is None else Decimal(high)
    grammar = _expression_grammar(decimal_range(lower, low_inclusive, upper, high_inclusive) or '"x"')
    rng = random.Random(7)
    probes = ["0", "-0", "0.0", "-0.00", "3", "3.0", "2.9999", "3.0001", "-1.5", "-1.50", "0.05", "0.0500"]
    probes += [low or "0", high or "0"] + [
        f"{rng.uniform(-120, 120):.{rng.randint(0, 4)}f}" for _ in range(400)
    ]
    for text in probes:
        value = Decimal(text)
        expected = (lower is None or (value >= lower if low_inclusive else value > lower)) and (
            upper is None or (value <= upper if high_inclusive else value < upper)
        )
        assert grammar.matches(text) == expected, text


def test_multiple_of_without_bounds() -> None:
    sevens = compile_json_schema({"type": "integer", "multipleOf": 7})
    for value in range(-300, 300):
        assert sevens.matches(str(value)) == (value % 7 == 0), value
    assert sevens.matches("7" + "0" * 40) and not sevens.matches("7" + "0" * 39 + "1")
    cents = compile_json_schema({"type": "number", "multipleOf": 0.01})
    assert [cents.matches(t) for t in ("1.23", "1.2300", "-4", "1.231")] == [True, True, True, False]
    assert compile_json_schema({"type": "integer", "multipleOf": 1e-8}).matches("12345")


@pytest.mark.parametrize("step", ["1.5", "0.3", "2.5", "0.75", "12"])
def test_multiple_of_a_decimal_step_without_bounds(step: str) -> None:
    """Every plain decimal with up to three fraction digits (and padded spellings like 4.50) is accepted exactly
    when it is a multiple; an integer schema takes the integers that are."""
    grammar = compile_json_schema({"type": "number", "multipleOf": float(step)})
    integers = compile_json_schema({"type": "integer", "multipleOf": float(step)})
    for thousandths in range(-20000, 20000, 3):
        value = Decimal(thousandths) / 1000
        for text in (format(value, "f"), format(value, "f") + "00"):
            if "." in text or text == format(value, "f"):
                assert grammar.matches(text) == (value % Decimal(step) == 0), text
        if value == int(value):
            assert integers.matches(str(int(value))) == (value % Decimal(step) == 0), value


@pytest.mark.parametrize(
    ("schema", "step"),
    [
        ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "multipleOf": 0.01}, Decimal("0.01")),
        ({"type": "number", "minimum": -1.5, "maximum": 100.25, "multipleOf": 0.001}, Decimal("0.001")),
        ({"type": "integer", "minimum": -12, "maximum": 20, "multipleOf": 5}, Decimal(5)),
        ({"type": "number", "minimum": 0, "exclusiveMaximum": 2, "multipleOf": 0.5}, Decimal("0.5")),
        ({"type": "integer", "minimum": 1, "maximum": 9, "multipleOf": 2.5}, Decimal("2.5")),
    ],
    ids=["cents-open", "thousandths", "fives", "halves", "integer-of-2.5"],
)
def test_multiple_of_between_bounds(schema: dict[str, Any], step: Decimal) -> None:
    """pydantic's `Field(gt=0, lt=1, multiple_of=0.01)` and friends: every plain decimal with up to four
    fraction digits in a window around the bounds is accepted exactly when the schema says it is valid."""
    grammar = compile_json_schema(schema)
    bounds = jsonschema.Draft202012Validator({key: value for key, value in schema.items() if key != "multipleOf"})
    for hundredths in range(-2000, 12000, 7):
        for value in (Decimal(hundredths) / 100, Decimal(hundredths) / 10000):
            text = format(value, "f")
            in_bounds = bounds.is_valid(int(value) if value == int(value) else float(text))
            whole_if_integer = schema["type"] == "number" or "." not in text
            assert grammar.matches(text) == (in_bounds and value % step == 0 and whole_if_integer), text


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 0, "multipleOf": 5},
        {"type": "integer", "exclusiveMinimum": 0, "multipleOf": 5},
        {"type": "number", "exclusiveMaximum": 0, "multipleOf": 3},
        {"type": "number", "maximum": 0, "multipleOf": 2},
        {"type": "number", "minimum": 0, "multipleOf": 1.5},
        {"type": "integer", "minimum": 0, "multipleOf": 0.3},
        {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01},
    ],
    ids=["ge0-5", "gt0-5", "lt0-3", "le0-2", "ge0-1.5", "int-ge0-0.3", "gt0-cents"],
)
def test_multiple_of_with_zero_as_its_only_bound(schema: dict[str, Any]) -> None:
    """pydantic's `conint(ge=0, multiple_of=5)` and friends: plain decimals around zero are accepted exactly
    when they are valid (an integer schema is judged on integers)."""
    grammar = compile_json_schema(schema)
    validator = jsonschema.Draft202012Validator(json.loads(json.dumps(schema), parse_float=Decimal))
    for units in range(-400, 400):
        for value in (Decimal(units), Decimal(units) / 10, Decimal(units) / 100):
            text = format(value, "f")
            if schema["type"] == "integer" and "." in text:
                continue
            assert grammar.matches(text) == validator.is_valid(json.loads(text, parse_float=Decimal)), text


def test_multiple_of_between_bounds_with_no_multiple_in_them_accepts_nothing() -> None:
    with pytest.raises(GrammarError, match="accepts no value"):
        compile_json_schema({"type": "integer", "minimum": 11, "maximum": 14, "multipleOf": 5})


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "uniqueItems": True},
        {"type": "array", "items": {"type": "boolean"}, "uniqueItems": True, "minItems": 1},
        {"type": "array", "items": {"enum": [1, 1.0, 2, True]}, "uniqueItems": True, "maxItems": 2},
        {
            "$defs": {"Color": {"type": "string", "enum": ["red", "blue"]}},
            "type": "array",
            "items": {"$ref": "#/$defs/Color"},
            "uniqueItems": True,
        },
    ],
    ids=["enum", "booleans-min-1", "numbers-max-2", "pydantic-set-of-enum"],
)
def test_unique_items_over_a_few_known_values(schema: dict[str, Any]) -> None:
    """Every array of up to four values from a pool is accepted exactly when a JSON Schema validator
    accepts it: repeats (1 and 1.0 are one number) are never allowed."""
    grammar = compile_json_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    pool = ["red", "green", "blue", True, False, 1, 1.0, 2, None]
    for length in range(5):
        for items in itertools.product(pool, repeat=length):
            assert grammar.matches(json.dumps(list(items))) == validator.is_valid(list(items)), items


NEGATION_POOL: list[Any] = [
    None, True, False, -3, -1, 0, 0.5, 1, 1.0, 2, 2.5, 7, "", "a", "ab", "abcd", "a\n", [], [1], [1, 2, 3],
    {}, {"a": 1}, {"a": "x"}, {"b": 2}, {"a": 1, "b": "y"}, {"a": None}, {"a": "x", "b": "yz"}, {"a": "y", "b": "yz"},
    {"a": "y", "b": "z"}, {"a": "x"},
]


@pytest.mark.parametrize(
    "schema",
    [
        {"not": {"minimum": 1}},
        {"not": {"type": "string", "maxLength": 2}},
        {"not": {"enum": [1, None, True]}},
        {"not": {"enum": [-1, 0.5, 2, 7, 2.0, False]}},
        {"not": {"required": ["a"]}},
        {"type": "object", "not": {"properties": {"a": {"type": "string"}}}},
        {"not": {"not": {"type": ["null", "array"]}}},
        {"not": {"anyOf": [{"type": "boolean"}, {"maxItems": 1}]}},
        {"if": {"type": "number"}, "then": {"minimum": 1}, "else": {"type": "string"}},
        {"if": {"exclusiveMaximum": 0}, "then": {"minimum": -2}},
        {"if": {"required": ["a"]}, "then": {"required": ["b"]}, "else": {"maxProperties": 0}},
        {"if": {"const": 1}, "then": False},
        {"dependentSchemas": {"a": {"required": ["b"]}, "b": {"properties": {"a": {"maximum": 1}}}}},
        {"type": "object", "dependentSchemas": {"a": False}},
        {"dependentSchemas": {"a": {"type": "object", "maxProperties": 1}, "b": False}},
        {"if": {"maxLength": 1}, "then": {"const": "a"}, "else": {"minLength": 4}},
        {"not": {"const": "a"}},
        {"type": "string", "not": {"enum": ["", "ab", "a\n"]}},
        {"type": ["string", "null"], "not": {"const": "a"}},
        {"anyOf": [{"type": "string"}, {"type": "null"}], "not": {"const": "ab"}},
        {"type": "null", "not": {"const": "a"}},
        {"not": {"enum": ["a", 1]}},
        {"type": "string", "allOf": [{"not": {"const": "a"}}, {"not": {"const": "ab"}}]},
        {
            "type": "object",
            "properties": {"a": {"enum": [1, "x", "y"]}, "b": {"type": "string"}},
            "required": ["a"],
            "if": {"properties": {"a": {"const": "x"}}},
            "then": {"required": ["b"]},
            "else": {"properties": {"b": {"maxLength": 1}}},
        },
    ],
)
def test_not_and_if_then_else_accept_what_a_validator_accepts(schema: dict[str, Any]) -> None:
    """Written through their negations as anyOf/allOf: every value of a mixed pool is accepted exactly when
    a JSON Schema validator accepts it."""
    grammar = compile_json_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for value in NEGATION_POOL:
        assert grammar.matches(json_text(value)) == validator.is_valid(value), value


def test_const_and_enum_together_allow_only_values_in_both() -> None:
    """Found by tests/grammar/test_schema_fuzz.py: merging allOf branches kept `const` and dropped `enum`."""
    for schema in (
        {"anyOf": [{"const": "ab", "enum": [0, 2.5]}], "maximum": -1},
        {"if": {"minLength": 2}, "then": {"enum": [""], "const": False}, "minLength": 3},
    ):
        with pytest.raises(GrammarError, match="accepts no value"):
            compile_json_schema(schema)
    both = compile_json_schema({"allOf": [{"const": 1}, {"enum": [1.0, 2]}]})
    assert both.matches("1") and both.matches("1.0") and not both.matches("2")


def test_modifiers_act_only_beside_their_keyword_in_one_schema_object() -> None:
    """minContains, then and else do nothing without contains or if in their own object; merged by allOf or
    $ref into another object they must not start acting there (minContains 0 beside another object's
    contains accepted arrays with no match)."""
    contains = compile_json_schema({"contains": {"const": 1}, "allOf": [{"minContains": 0}]})
    assert contains.matches("[1]") and not contains.matches("[]")
    by_ref = compile_json_schema({"contains": {"const": 1}, "$defs": {"x": {"minContains": 0}}, "$ref": "#/$defs/x"})
    assert not by_ref.matches("[]")
    split = compile_json_schema({"allOf": [{"if": {"exclusiveMaximum": 0}}, {"then": {"minimum": -10}}]})
    assert split.matches("-100") and split.matches("3")


def test_a_negated_enum_beside_lengths_compiles_as_one_string_automaton() -> None:
    """not (enum and maxLength) is a string outside the enum or longer: both on one string, as an automaton."""
    grammar = compile_json_schema(
        {"if": {"enum": [1, None, "a"]}, "else": {"not": {"enum": ["ab"], "maxLength": 1}}, "const": ""}
    )
    assert grammar.matches('""')
    assert not any(grammar.matches(text) for text in ('"a"', '"ab"', "1"))


def test_negation_of_what_no_schema_here_can_say_is_refused_by_name() -> None:
    for schema, keyword in (
        ({"not": {"uniqueItems": True}}, "not"),
        ({"not": {"type": "integer"}, "minimum": 1}, "not"),
        ({"if": {"items": {"uniqueItems": True}}, "then": {"minItems": 1}}, "if"),
        ({"not": {"multipleOf": 0.5}}, "not"),
    ):
        with pytest.raises(GrammarError, match=f"'{keyword}'"):
            compile_json_schema(schema)
        assert compile_json_schema(schema, lenient=True).unenforced


def test_number_bounds_in_a_schema() -> None:
    grammar = compile_json_schema({"type": "number", "exclusiveMinimum": 0, "maximum": 1.5})
    assert [grammar.matches(t) for t in ("0.001", "1.5", "1", "0", "-0", "1.51", "-1")] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    integers = compile_json_schema({"type": "integer", "minimum": 0.5, "exclusiveMaximum": 3})
    assert [integers.matches(t) for t in ("0", "1", "2", "3")] == [False, True, True, False]


# ------------------------------------------------------------------------------------------ patterns


def _pattern_grammar(pattern: str) -> Grammar:
    any_char = json_char_set(complement(())) or ""
    return compile_gbnf(f'root ::= "\\"" {pattern_to_gbnf(pattern, "c")} "\\""\nc ::= {any_char}\n')


@pytest.mark.parametrize(
    "pattern, accepted, rejected",
    [
        ("^[a-zA-Z0-9_-]*$", ["", "He_llo-12"], ["!", "Hello World"]),
        (r"^a\^\$\.\[\]\(\)\|\{\}\*\+\?b$", ["a^$.[]()|{}*+?b"], ["ab"]),
        ("abc", ["abc", "xabcx", 'a"abc'], ["ab", "acb"]),
        ("^a{2,3}$", ["aa", "aaa"], ["a", "aaaa"]),
        ("^a{2,}?$", ["aa", "aaaaa"], ["a"]),
        (r"^\d+(\.\d+)?$", ["1", "1.25"], ["1.", "a", "١"]),
        ("^(foo|bar)$|^x", ["foo", "bar", "xyz"], ["foox", "yx"]),
        (r'^[^"]*$', ["abc", "a\nb"], ['a"b']),
        (r"^\s$", [" ", "\t", "\u3000", "\n", "\ufeff"], ["a"]),
        (r"^\S\W\w$", ["a-b"], [" -b", "a-_x"]),
        ("^.$", ["a", '"', "\\", "é"], ["\n", "\r", "\u2028", "ab"]),
        ("^🐲*$", ["", "🐲🐲"], ["🐲a"]),
        (r"^\cC\x41\u0042\u{43}\0$", ["\x03ABC\x00"], ["\x03ABC"]),
        (r"^[\d-z]+$", ["1-z"], ["a"]),
        ("^(?:ab)+(?<name>c)$", ["ababc"], ["abc c"]),
        ("^\\ud83d\\udc32$", ["🐲"], ["a"]),
        ("a{,3}", ["a{,3}"], ["aaa"]),
    ],
)
def test_patterns(pattern: str, accepted: list[str], rejected: list[str]) -> None:
    grammar = _pattern_grammar(pattern)
    for text in accepted:
        assert grammar.matches(json.dumps(text, ensure_ascii=False)), text
    for text in rejected:
        assert not grammar.matches(json.dumps(text, ensure_ascii=False)), text


def test_patterns_accept_every_json_spelling_of_special_characters() -> None:
    grammar = _pattern_grammar('^["\\\\/\n]+$')
    for text in ('"\\""', '"\\\\"', '"/"', '"\\/"', '"\\n"', '"\\u000a"', '"\\u000A"'):
        assert grammar.matches(text), text


@pytest.mark.parametrize(
    "pattern, named",
    [
        (r"(a)\1", "backreference"),
        ("a(?=b)", "lookaround"),
        ("a(?<!b)", "lookaround"),
        (r"\bfoo", "word boundary"),
        (r"\p{L}", "Unicode property"),
        ("a**", "nothing to repeat"),
        ("(a", "unclosed group"),
        ("a)", "unbalanced"),
        ("[a", "unterminated"),
        ("a(^b)", "anchor"),
        (r"\a", "unknown escape"),
        ("a{20000}", "repetition count"),
    ],
)
def test_patterns_refused_by_name(pattern: str, named: str) -> None:
    with pytest.raises(GrammarError, match=named):
        _pattern_grammar(pattern)
    with pytest.raises(GrammarError, match="'pattern' at '#/properties/p'"):
        compile_json_schema({"properties": {"p": {"type": "string", "pattern": pattern}}})
    lenient = compile_json_schema({"properties": {"p": {"type": "string", "pattern": pattern}}}, lenient=True)
    assert lenient.unenforced == ("pattern at #/properties/p",)


# ------------------------------------------------------------------------------------------ strings, formats


def test_string_lengths_count_code_points() -> None:
    grammar = compile_json_schema({"type": "string", "minLength": 2, "maxLength": 3})
    for text, expected in [("ab", True), ("abcd", False), ("a", False), ("🐲🐲", True), ('é\n"', True)]:
        assert grammar.matches(json_text(text)) == expected, text
    assert grammar.matches('"\\ud83d\\udc32\\u0041"')
    assert not grammar.matches('"\\ud83d\\udc32\\u0041zz"')
    assert not grammar.matches('"\\ud83da"')


@pytest.mark.parametrize(
    "name, accepted, rejected",
    [
        (
            "date",
            ["2020-02-29", "2000-02-29", "2021-12-31"],
            ["2021-02-29", "1900-02-29", "2020-04-31", "2020-13-01"],
        ),
        ("time", ["08:30:06Z", "23:20:50.52+05:30", "12:00:00z"], ["24:00:00Z", "12:00:00", "12:60:00Z"]),
        ("date-time", ["1963-06-19T08:30:06.283185Z"], ["1963-06-19 08:30:06Z", "1963-06-19T08:30:06"]),
        ("uuid", ["2eb8aa08-AA98-11ea-b4aa-73b441d16380"], ["2eb8aa08-aa98-11ea-b4aa-73b441d1638"]),
        (
            "email",
            ["joe.bloggs@example.com", "a@[127.0.0.1]"],
            ["te..st@example.com", "@example.com", "a@b=c"],
        ),
        ("ipv4", ["192.168.0.1", "0.0.0.0"], ["256.1.1.1", "01.2.3.4", "1.2.3"]),
        ("ipv6", ["::1", "1:2:3:4:5:6:7:8", "::ffff:192.168.0.1"], ["1::2::3", "12345::", "1:2:3:4:5:6:7"]),
        (
            "uri",
            ["http://foo.bar/?baz=qux#quux", "urn:a:b", "ldap://[2001:db8::7]/c=GB"],
            ["//foo.bar", "abc", "http://a b", "http://example.com:abc/"],
        ),
        ("duration", ["P4DT12H30M5S", "P2W", "PT0S"], ["P", "PT", "P1D2H", "PT1H2S"]),
        ("json-pointer", ["", "/a~0b/~1", "/"], ["a", "/~2"]),
        ("relative-json-pointer", ["0#", "2/a/1"], ["/a", "01/a"]),
        ("uri-reference", ["/a?b#c", "//host/p", ""], ["\\\\WINDOWS", "a b"]),
        ("iri", ["http://ƒøø.ßår/?∂éœ=πîx#πîüx", "http://[V1.fe]"], ["âππ", "http://[::ffff:192.168.0.01]"]),
        ("iri-reference", ["/âππ", "#ƒrägmênt"], ["#ƒräg\\mênt"]),
        (
            "uri-template",
            ["http://e.com/{term:1}/{term}", "{+var}", "a%41b"],
            ["{}", "{a,,b}", "{v:01}", "a b"],
        ),
    ],
)
def test_formats(name: str, accepted: list[str], rejected: list[str]) -> None:
    grammar = compile_json_schema({"type": "string", "format": name})
    for text in accepted:
        assert grammar.matches(json_text(text)), text
    for text in rejected:
        assert not grammar.matches(json_text(text)), text


def test_formats_unknown_are_annotations_and_unsupported_are_refused() -> None:
    assert compile_json_schema({"type": "string", "format": "colour"}).matches('"anything"')
    with pytest.raises(GrammarError, match="'format' at '#'.*idn-hostname"):
        compile_json_schema({"type": "string", "format": "idn-hostname"})
    assert compile_json_schema({"format": "idn-hostname"}, lenient=True).unenforced == ("format at #",)
    with pytest.raises(GrammarError, match="'format' at '#'.*together with 'pattern'"):
        compile_json_schema({"type": "string", "format": "iri", "pattern": "^2"})


# ------------------------------------------------------------------------------------------ objects, arrays


def test_properties_in_schema_order_optional_skippable_extras_after() -> None:
    grammar = compile_json_schema(
        {"properties": {"b": {"type": "integer"}, "a": {"type": "string"}}, "required": ["a"]}
    )
    assert grammar.matches('{"b": 1, "a": "x"}')
    assert grammar.matches('{"a": "x"}')
    assert grammar.matches('{"a": "x", "c": [1, {"d": null}]}')
    assert grammar.matches('{"a": "x", "ab": 1, "": 2}')
    assert not grammar.matches('{"a": "x", "b": 1}')
    assert not grammar.matches('{"b": 1}')
    assert not grammar.matches('{"a": "x", "a": "y"}')
    assert not grammar.matches('{"a": "x", "b": "not an integer"}')


def test_additional_properties_schema_and_false() -> None:
    typed = compile_json_schema(
        {"properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}}
    )
    assert typed.matches('{"a": 1, "b": "x"}') and not typed.matches('{"a": 1, "b": 2}')
    assert not typed.matches('{"a": "x"}')
    closed = compile_json_schema({"properties": {"a": {"type": "integer"}}, "additionalProperties": False})
    assert closed.matches('{"a": 1}') and closed.matches("{}") and not closed.matches('{"b": 1}')
    unsatisfiable = {"type": "object", "properties": {"a": False}, "required": ["a"]}
    with pytest.raises(GrammarError, match="accepts no value"):
        compile_json_schema(unsatisfiable)


def test_dependent_required_in_both_directions() -> None:
    grammar = compile_json_schema(
        {
            "properties": {
                "card": {"type": "string"},
                "name": {"type": "string"},
                "billing": {"type": "string"},
            },
            "dependentRequired": {"billing": ["card"], "card": ["name"]},
            "additionalProperties": False,
        }
    )
    assert grammar.matches('{"card": "1", "name": "n"}') and grammar.matches('{"name": "n"}')
    assert grammar.matches('{"card": "1", "name": "n", "billing": "b"}') and grammar.matches("{}")
    assert not grammar.matches('{"card": "1"}') and not grammar.matches('{"name": "n", "billing": "b"}')
    legacy = compile_json_schema({"dependencies": {"bar": ["foo"]}})
    assert legacy.matches('{"foo": 1, "bar": 2}') and not legacy.matches('{"bar": 2}')
    schema_entry = compile_json_schema({"dependencies": {"bar": {"required": ["foo"]}}})
    assert schema_entry.matches('{"foo": 1, "bar": 2}') and not schema_entry.matches('{"bar": 2}')
    undeclared = compile_json_schema({"dependentRequired": {"bar": ["foo"]}})
    assert undeclared.matches('{"foo": 1, "bar": 2}') and undeclared.matches('{"foo": 1, "x": 2}')
    assert not undeclared.matches('{"bar": 2}') and not undeclared.matches('{"bar": 2, "x": 1}')


def test_min_and_max_properties() -> None:
    grammar = compile_json_schema(
        {
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "minProperties": 1,
            "maxProperties": 2,
        }
    )
    assert not grammar.matches("{}")
    assert grammar.matches('{"a": 1}') and grammar.matches('{"b": 1, "z": 2}')
    assert grammar.matches('{"x": 1, "y": 2}') and not grammar.matches('{"a": 1, "b": 2, "c": 3}')


def test_property_counts_over_many_properties_are_refused_not_slow() -> None:
    schema = {"properties": {f"p{i}": {"type": "integer"} for i in range(200)}, "maxProperties": 50}
    with pytest.raises(GrammarError, match="'maxProperties' at '#'"):
        compile_json_schema(schema)
    assert compile_json_schema(schema, lenient=True).unenforced == ("maxProperties at #",)


def test_arrays_prefix_items_and_counts() -> None:
    grammar = compile_json_schema(
        {
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "items": {"type": "boolean"},
            "minItems": 1,
            "maxItems": 3,
        }
    )
    assert grammar.matches("[1]") and grammar.matches('[1, "a"]') and grammar.matches('[1, "a", true]')
    assert not grammar.matches("[]") and not grammar.matches('[1, "a", true, false]')
    assert not grammar.matches('["a"]') and not grammar.matches("[1, 2]")
    closed = compile_json_schema({"prefixItems": [{"type": "integer"}], "items": False})
    assert closed.matches("[]") and closed.matches("[1]") and not closed.matches("[1, 2]")
    assert compile_json_schema({"type": "array", "uniqueItems": True, "maxItems": 1}).matches("[1]")


def test_contains_with_min_contains() -> None:
    grammar = compile_json_schema(
        {"items": {"type": "integer"}, "contains": {"minimum": 5}, "minContains": 2}
    )
    assert grammar.matches("[5, 6]") and grammar.matches("[1, 7, 2, 9, 0]")
    assert (
        not grammar.matches("[1, 7, 2]") and not grammar.matches("[]") and not grammar.matches('[5, 6, "x"]')
    )
    assert compile_json_schema({"contains": {"const": 1}, "minContains": 0}).matches("[]")


def test_unevaluated_keywords_act_on_what_siblings_leave() -> None:
    closed = compile_json_schema(
        {
            "allOf": [{"properties": {"a": {"type": "integer"}}}],
            "properties": {"b": {}},
            "unevaluatedProperties": False,
        }
    )
    assert closed.matches('{"b": 2, "a": 1}') and not closed.matches('{"b": 1, "c": 2}')
    assert compile_json_schema({"additionalProperties": True, "unevaluatedProperties": False}).matches(
        '{"c": 1}'
    )
    items = compile_json_schema(
        {"prefixItems": [{"type": "integer"}], "unevaluatedItems": {"type": "string"}}
    )
    assert items.matches('[1, "a", "b"]') and not items.matches("[1, 2]")


def test_property_names_without_declared_properties() -> None:
    grammar = compile_json_schema({"type": "object", "propertyNames": {"pattern": "^a+$"}})
    assert grammar.matches('{"a": 1, "aa": [2]}') and not grammar.matches('{"ab": 1}')
    assert compile_json_schema({"type": "object", "propertyNames": False}).matches("{}")
    assert not compile_json_schema({"type": "object", "propertyNames": False}).matches('{"a": 1}')


def test_enum_const_keep_only_values_the_other_keywords_allow() -> None:
    grammar = compile_json_schema(
        {"enum": ["a", "abcd", 3, None], "type": ["string", "null"], "maxLength": 2}
    )
    assert [grammar.matches(t) for t in ('"a"', '"abcd"', "3", "null")] == [True, False, False, True]
    assert compile_json_schema({"const": {"x": [1, "é"]}}).matches('{"x": [1, "é"]}')
    with pytest.raises(GrammarError, match="accepts no value"):
        compile_json_schema({"const": "abc", "minLength": 5})


def test_a_ref_inside_draft7_dependencies_resolves_against_the_document() -> None:
    """Draft 7's `dependencies` holds schemas (and arrays of names): their `$ref`s are made absolute like any
    other subschema's, so a relative one is found in the document (it was refused as a remote reference)."""
    schema = {
        "definitions": {"n": {"type": "integer"}},
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "dependencies": {"a": {"properties": {"b": {"$ref": "#/definitions/n"}}}, "c": ["a"]},
    }
    grammar = compile_json_schema(schema)
    cases = ('{"a": "x", "b": 1}', '{"a": "x", "b": "y"}', '{"c": 1}', '{"a": "x", "c": 1}')
    assert [grammar.matches(text) for text in cases] == [True, False, False, True]


def test_an_enum_beside_a_not_of_values_keeps_the_others_in_json_equality() -> None:
    """A `not` that lists values (what oneOf's exclusions write beside an enum) is applied value by value: 1 and
    1.0 are one number, true is not 1, and what else sits beside the `not` is still checked."""
    grammar = compile_json_schema({"enum": ["a", "b", 1, True, {"k": [1]}], "not": {"enum": ["b", 1.0, {"k": [1.0]}]}})
    cases = ('"a"', '"b"', "1", "true", '{"k": [1]}')
    assert [grammar.matches(text) for text in cases] == [True, False, False, True, False]
    refs = {"$defs": {"no": {"const": True}}, "enum": [True, False], "not": {"$ref": "#/$defs/no"}}
    assert [compile_json_schema(refs).matches(t) for t in ("true", "false")] == [False, True]
    both = compile_json_schema({"enum": ["a", "bb", "ccc"], "not": {"enum": ["a"]}, "maxLength": 2})
    assert [both.matches(t) for t in ('"a"', '"bb"', '"ccc"')] == [False, True, False]
    with pytest.raises(GrammarError, match="accepts no value"):
        compile_json_schema({"enum": [1, 2], "not": {"enum": [2.0, 1]}})


# ------------------------------------------------------------------------------------------ combinators, refs


def test_all_of_merges_and_distributes_any_of() -> None:
    grammar = compile_json_schema(
        {
            "allOf": [
                {"properties": {"a": {"type": "integer", "minimum": 0}}, "required": ["a"]},
                {"properties": {"a": {"maximum": 5}}},
                {"anyOf": [{"required": ["b"]}, {"required": ["c"]}]},
            ]
        }
    )
    assert grammar.matches('{"a": 5, "b": 1}') and grammar.matches('{"a": 0, "c": null}')
    assert not grammar.matches('{"a": 6, "b": 1}') and not grammar.matches('{"a": 1}')
    with pytest.raises(GrammarError, match="'allOf' at '#'.*multipleOf"):
        compile_json_schema({"allOf": [{"multipleOf": 3}, {"multipleOf": 5}]})


def test_one_of_only_when_branches_are_disjoint() -> None:
    tagged = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}},
                "required": ["kind"],
            },
            {"type": "object", "properties": {"kind": {"const": "b"}}, "required": ["kind"]},
        ]
    }
    grammar = compile_json_schema(tagged)
    assert grammar.matches('{"kind": "a", "x": 1}') and grammar.matches('{"kind": "b"}')
    assert compile_json_schema({"oneOf": [{"type": "string"}, {"type": "integer"}]}).matches("3")
    untyped_branch = {
        "oneOf": [
            {"type": "object", "properties": {"k": {"const": "a"}}, "required": ["k"]},
            {"properties": {"k": {"enum": ["b"]}}, "required": ["k"]},
        ]
    }
    grammar = compile_json_schema(untyped_branch)
    assert grammar.matches('{"k": "b"}') and grammar.matches('"text"') and not grammar.matches('{"k": "c"}')
    overlapping = {"oneOf": [{"type": "integer"}, {"minimum": 2, "multipleOf": 3}]}
    with pytest.raises(GrammarError, match="'oneOf' at '#'"):
        compile_json_schema(overlapping)
    assert compile_json_schema(overlapping, lenient=True).unenforced


def test_recursive_refs_become_recursive_rules() -> None:
    tree = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["value"],
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/node",
    }
    grammar = compile_json_schema(tree)
    assert grammar.matches('{"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}')
    assert not grammar.matches('{"value": 1, "children": [{"children": []}]}')
    gbnf, _ = json_schema_to_gbnf(tree)
    assert gbnf.startswith("root ::= ")


def test_refs_by_anchor_pointer_escapes_and_remote_resolver() -> None:
    schema = {
        "$defs": {"a/b": {"$anchor": "here", "type": "integer"}},
        "properties": {"x": {"$ref": "#here"}, "y": {"$ref": "#/$defs/a~1b"}},
    }
    grammar = compile_json_schema(schema)
    assert grammar.matches('{"x": 1, "y": 2}') and not grammar.matches('{"x": "1"}')
    documents = {"https://example.com/int.json": {"type": "integer"}}
    remote = {"$ref": "https://example.com/int.json"}
    assert compile_json_schema(remote, resolver=documents.__getitem__).matches("7")
    with pytest.raises(GrammarError, match="remote references are not fetched"):
        compile_json_schema(remote)
    with pytest.raises(GrammarError, match="points to nothing"):
        compile_json_schema({"$ref": "#/$defs/missing"})


# ------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    "schema, keyword, pointer",
    [
        ({"type": "array", "uniqueItems": True}, "uniqueItems", "#"),
        ({"not": {"pattern": "^(?=a)"}}, "not", "#"),
        ({"type": "string", "minLength": 9000, "not": {"const": "ab"}}, "not", "#"),
        ({"if": {"pattern": "^(?=a)"}, "then": {"minLength": 2}}, "if", "#"),
        ({"type": "integer", "multipleOf": 3, "minimum": 1}, "multipleOf", "#"),
        ({"type": "number", "multipleOf": 1.5, "exclusiveMinimum": 0}, "multipleOf", "#"),
        ({"type": "integer", "multipleOf": 3, "minimum": 0, "maximum": 10**6}, "multipleOf", "#"),
        ({"type": "number", "multipleOf": 0.123456789}, "multipleOf", "#"),
        ({"contains": {"type": "string"}, "maxContains": 2}, "contains", "#"),
        ({"type": "array", "contains": {"type": "string"}, "maxItems": 3}, "contains", "#"),
        ({"dependentSchemas": {"a": {"required": ["b"]}}, "unevaluatedProperties": False}, "dependentSchemas", "#"),
        ({"dependentRequired": {f"t{i}": ["x"] for i in range(9)}}, "dependentRequired", "#"),
        ({"patternProperties": {"^x(?=y)": {"type": "string"}}}, "patternProperties", "#"),
        ({"properties": {"a": {}}, "propertyNames": {"anyOf": [{"const": "a"}, {"const": "b"}]}}, "propertyNames", "#"),
        ({"allOf": [{"unevaluatedProperties": False}, {"minProperties": 1}]}, "unevaluatedProperties", "#/allOf/0"),
        ({"items": {"contains": {}, "unevaluatedItems": False}}, "unevaluatedItems", "#/items"),
    ],
)
def test_unenforceable_keywords_are_named_or_reported(
    schema: dict[str, Any], keyword: str, pointer: str
) -> None:
    with pytest.raises(GrammarError, match=f"'{keyword}' at '{pointer}'"):
        compile_json_schema(schema)
    grammar = compile_json_schema(schema, lenient=True)
    assert grammar.unenforced == (f"{keyword} at {pointer}",)
    _, unenforced = json_schema_to_gbnf(schema, lenient=True)
    assert unenforced == grammar.unenforced


@pytest.mark.parametrize(
    "schema, message",
    [
        ({"type": "kaboom"}, "unknown type"),
        ({"type": 123}, "unknown type"),
        ({"properties": []}, "properties must be an object"),
        ({"minLength": -1}, "minLength must be a non-negative integer"),
        ({"minimum": "3"}, "minimum must be a number"),
        ({"anyOf": []}, "anyOf must be a non-empty array"),
        (False, "accepts no value"),
        ({"properties": {"x": 3}}, "must be an object or a boolean"),
    ],
)
def test_bad_schemas_are_refused(schema: Any, message: str) -> None:
    with pytest.raises(GrammarError, match=message):
        compile_json_schema(schema)


def test_annotations_and_boolean_schemas() -> None:
    annotated = {
        "title": "T",
        "description": "d",
        "$comment": "c",
        "examples": [1],
        "default": 1,
        "deprecated": True,
        "readOnly": True,
        "writeOnly": False,
        "$schema": "x",
        "type": "integer",
    }
    assert compile_json_schema(annotated).matches("12")
    anything = compile_json_schema(True)
    for text in ("1", '"s"', "[]", '{"a": [null]}', "true", "null"):
        assert anything.matches(text)
    assert compile_json_schema({}).matches("[]")


# ------------------------------------------------------------------------------------------ whitespace, API


WHITESPACE_SCHEMAS: list[Any] = [
    {},
    {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}},
    {"type": "array", "prefixItems": [{"type": "string"}], "minItems": 1},
    {"properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "boolean"}},
] + [case["schema"] for case in TO_GRAMMAR if case["expected_status"] == "SUCCESS"]


@pytest.mark.parametrize("schema", WHITESPACE_SCHEMAS)
def test_whitespace_is_bounded_after_every_prefix(schema: Any) -> None:
    """From any state a few structural bytes reach, a run of whitespace dies within 42 bytes."""
    grammar = compile_json_schema(schema)
    automaton = grammar.automaton
    for prefix in (b"", b"{", b"[", b'{"a":', b'{"a": [', b"[1,", b'["x",', b'{"a": 1,'):
        state = automaton.walk(automaton.initial, prefix)
        if state == DEAD:
            continue
        for run in (b" " * 43, b"\n" * 3, (b"\n" + b" " * 20) * 3):
            assert automaton.walk(state, run) == DEAD, (prefix, run)


def test_whitespace_layouts_accepted() -> None:
    grammar = compile_json_schema({"type": "object", "properties": {"a": {"type": "array"}}})
    assert grammar.matches('{"a": [1, 2]}') and grammar.matches('{"a":[1,2]}')
    assert grammar.matches('{\n  "a": [\n    1,\n    2\n  ]\n}')
    assert grammar.matches("{\n" + " " * 20 + '"a": []}')
    assert not grammar.matches("{\n" + " " * 21 + '"a": []}')
    assert not grammar.matches('{"a" : []}') and not grammar.matches(' {"a": []}')
    assert not grammar.matches('{"a": []} ') and not grammar.matches('{"a": []}\n')


def test_json_object_mode() -> None:
    grammar = compile_json_object()
    assert grammar.matches('{"a": [1, {"b": null}], "c": "d"}') and grammar.matches("{}")
    for text in ("[]", '"x"', "1", "null"):
        assert not grammar.matches(text)


def test_compile_json_schema_compiles_afresh_and_refuses_what_is_not_json() -> None:
    schema = {"type": "object", "properties": {"a": {}, "b": {}}}
    assert compile_json_schema(schema) is not compile_json_schema(schema)  # GrammarCompiler caches
    with pytest.raises(GrammarError, match="not JSON"):
        compile_json_schema({"x": {1, 2}})  # type: ignore[dict-item]


CLOSABLE = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "id"],
}


def test_closed_objects_generate_only_declared_and_required_properties() -> None:
    """What the API routes compile: a model may not invent keys an object declares nothing about; the
    output stays valid under the schema, and JSON Schema's own semantics stay the default."""
    closed = compile_json_schema(CLOSABLE, closed_objects=True)
    assert closed.matches('{"name": "a", "age": 3, "id": [1]}')
    assert closed.matches('{"name": "a", "id": null}')
    assert not closed.matches('{"name": "a", "id": 1, "extra": 1}')
    assert compile_json_schema(CLOSABLE).matches('{"name": "a", "id": 1, "extra": 1}')
    reopened = {**CLOSABLE, "additionalProperties": True}
    assert compile_json_schema(reopened, closed_objects=True).matches('{"name": "a", "id": 1, "extra": 1}')
    typed_extras = {**CLOSABLE, "additionalProperties": {"type": "integer"}}
    assert compile_json_schema(typed_extras, closed_objects=True).matches('{"name": "a", "id": 1, "x": 2}')


def test_closed_objects_leave_free_form_and_unreachable_objects_open() -> None:
    """A schema with no properties is a free-form object (a dict), and one whose minProperties needs more
    keys than it declares would accept nothing if closed: both keep their extra properties."""
    assert compile_json_schema({"type": "object"}, closed_objects=True).matches('{"k": 1}')
    needs_more = {"type": "object", "properties": {"a": {"type": "integer"}}, "minProperties": 2}
    assert compile_json_schema(needs_more, closed_objects=True).matches('{"a": 1, "b": 2}')


def test_closed_objects_keep_every_enum_value_the_schema_allows() -> None:
    """An enum value is written as it is, so it is checked against the keywords beside it in JSON Schema's
    own semantics: closing the objects of that check dropped this one (its `bar` is no string, so the `not`
    holds) and the schema was refused as accepting nothing."""
    schema = {
        "allOf": [
            {"enum": [{"bar": {}, "foo": 1}, {"bar": "x", "foo": 1}]},
            {"not": {"properties": {"bar": {"type": "string"}, "foo": {"type": "integer"}}}},
        ]
    }
    for closed in (False, True):
        grammar = compile_json_schema(schema, closed_objects=closed)
        assert grammar.matches('{"bar": {}, "foo": 1}')
        assert not grammar.matches('{"bar": "x", "foo": 1}')


def test_closed_objects_apply_after_allof_merges_properties() -> None:
    """pydantic and hand-written schemas compose objects with allOf: the merged object keeps every
    branch's properties and is closed as a whole."""
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"type": "string"}}},
        ]
    }
    closed = compile_json_schema(schema, closed_objects=True)
    assert closed.matches('{"a": 1, "b": "x"}')
    assert not closed.matches('{"a": 1, "b": "x", "c": 0}')
