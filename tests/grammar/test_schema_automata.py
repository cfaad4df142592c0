"""Constraints that meet on one string or one key, compiled through automata (json_schema/char_dfa.py): a
pattern with lengths, a format or excluded values; patternProperties and propertyNames beside declared names;
oneOf branches made exclusive; pydantic's HttpUrl. Each widening accepts what is valid and rejects what is not."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from edge_runtime.grammar import GrammarError, compile_json_schema
from edge_runtime.grammar.json_schema import json_text
from edge_runtime.grammar.json_schema.char_dfa import (
    CharDfa,
    complement,
    intersection,
    length_dfa,
    names_dfa,
    pattern_dfa,
)
from edge_runtime.grammar.json_schema.key_classes import PatternProperty, key_classes

_PATTERNS = [
    "^[a-z]+$",
    "x-",
    "^(a|b)*abb$",
    "^[A-Z][a-z0-9_]{2,5}$",
    "^\\d{3}-\\d{4}$",
    "(foo|bar)baz?",
    "^[^/]+/[^/]+$",
    "^a.c$",
    "colou?r",
    "^(?:[a-f0-9]{2}:){2}[a-f0-9]{2}$",
    "^$",
    "\\s",
]
_ALPHABET = "abcxyzABZ019_-/: \n.fo"


def _strings(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 9))) for _ in range(count)] + [
        "abb",
        "ab:cd:ef",
        "123-4567",
        "Abc_1",
        "x-y",
        "color",
        "a/b",
        "abc",
        "foobaz",
    ]


def _accepts(schema: Any, value: Any) -> bool:
    return compile_json_schema(schema).matches(json_text(value))


@pytest.mark.parametrize("pattern", _PATTERNS)
def test_pattern_automaton_agrees_with_a_regex_search(pattern: str) -> None:
    dfa = pattern_dfa(pattern)
    for text in _strings(len(pattern), 300):
        # ECMAScript's `$` is the end of the text; Python's also matches before a final newline
        assert dfa.matches(text) == (re.search(pattern.replace("$", "\\Z"), text) is not None), (
            pattern,
            text,
        )


def test_automaton_operations_are_exact() -> None:
    letters = pattern_dfa("^[a-z]+$")
    short = intersection(letters, length_dfa(2, 3))
    assert [short.matches(t) for t in ("a", "ab", "abc", "abcd", "A1")] == [False, True, True, False, False]
    others = intersection(letters, complement(names_dfa(["ab", "abc"])))
    assert others.matches("abd") and not others.matches("ab") and not others.matches("abc")
    assert intersection(pattern_dfa("^a"), pattern_dfa("^b")).empty


def test_intersection_accepts_what_both_accept() -> None:
    """The product sweeps both sorted rows at once; rows cut at different characters (a complement's gaps,
    ranges overlapping two of the other's) must still meet everywhere they overlap."""
    operands = [
        pattern_dfa(p) for p in ("^[a-m]+[0-9]?$", "^[g-z0-5]{1,4}$", "^(ab|c[d-k])*$", "x", "^[^aeiou]*$")
    ]
    operands += [complement(dfa) for dfa in operands] + [complement(names_dfa(["ab", "cd", "x1"]))]
    rng = random.Random(5)
    for a in operands:
        for b in operands:
            both = intersection(a, b)
            for _ in range(60):
                text = "".join(rng.choice("abcdgkmxz05é") for _ in range(rng.randint(0, 5)))
                assert both.matches(text) == (a.matches(text) and b.matches(text)), text


def _reference_product(a: CharDfa, b: CharDfa) -> CharDfa:
    """Every pair of transitions tried, rows sorted, then pruned and numbered breadth first: the plain
    construction the native product must equal state for state (the grammars written from it stay the same)."""
    numbers, order, rows = {(0, 0): 0}, [(0, 0)], []
    for left, right in order:
        row = []
        for low_a, high_a, target_a in a.transitions[left]:
            for low_b, high_b, target_b in b.transitions[right]:
                if max(low_a, low_b) <= min(high_a, high_b):
                    if (target_a, target_b) not in numbers:
                        numbers[(target_a, target_b)] = len(order)
                        order.append((target_a, target_b))
                    row.append((max(low_a, low_b), min(high_a, high_b), numbers[(target_a, target_b)]))
        rows.append(sorted(row))
    alive = {numbers[p] for p in order if p[0] in a.accepting and p[1] in b.accepting}
    grown = True
    while grown:
        before = len(alive)
        alive |= {s for s, row in enumerate(rows) if any(t in alive for _, _, t in row)}
        grown = len(alive) > before
    if 0 not in alive:
        return CharDfa((), frozenset())
    renumber, seen, out = {0: 0}, [0], []
    for state in seen:
        kept = []
        for low, high, target in rows[state]:
            if target in alive:
                if target not in renumber:
                    renumber[target] = len(seen)
                    seen.append(target)
                kept.append((low, high, renumber[target]))
        out.append(tuple(kept))
    accepting = frozenset(renumber[s] for s in seen if order[s][0] in a.accepting and order[s][1] in b.accepting)
    return CharDfa(tuple(out), accepting)


def test_native_product_is_the_plain_product_state_for_state() -> None:
    operands = [pattern_dfa(p) for p in ("^[a-m]+[0-9]?$", "^[g-z0-5]{1,4}$", "^(ab|c[d-k])*$", "x", "^q$")]
    operands += [complement(dfa) for dfa in operands] + [length_dfa(2, 6), names_dfa(["ab", "cd", "x1"])]
    for a in operands:
        for b in operands:
            assert intersection(a, b) == _reference_product(a, b)


def test_a_product_past_the_state_limit_is_refused() -> None:
    with pytest.raises(GrammarError, match="more than 4096 automaton states"):
        intersection(length_dfa(0, 3000), pattern_dfa("^[ab]*a[ab]{3}$"))


def test_key_classes_split_keys_by_exactly_the_patterns_they_match() -> None:
    """Each class holds the keys that match exactly its patterns and no declared name; classes come by size,
    then by pattern index, and a set of patterns no key matches exactly has no class."""
    patterns = [PatternProperty(p, pattern_dfa(p), {}, f"#/patternProperties/{p}") for p in ("^x", "y$", "^xy", "^q$")]
    declared = ["xy", "a"]
    classes = key_classes(patterns, declared, None)
    chosen = [tuple(patterns.index(p) for p in patterns if p.pointer in c.pointers) for c in classes]
    assert chosen == sorted(chosen, key=lambda c: (len(c), c))
    assert (0, 1, 3) not in chosen and (3,) in chosen  # "q" matches ^q$ alone; nothing matches it with ^x
    rng = random.Random(9)
    for _ in range(400):
        key = "".join(rng.choice("xyqa") for _ in range(rng.randint(0, 4)))
        matched = tuple(i for i, p in enumerate(patterns) if re.search(p.pattern, key))
        holding = [c for c, dfa in zip(chosen, (c.dfa for c in classes), strict=True) if dfa.matches(key)]
        assert holding == ([] if key in declared else [matched]), key


def test_pattern_beside_lengths_and_excluded_values() -> None:
    schema = {
        "type": "string",
        "pattern": "^[a-z]+$",
        "minLength": 2,
        "maxLength": 4,
        "not": {"const": "abc"},
    }
    for value, valid in (
        ("ab", True),
        ("abcd", True),
        ("a", False),
        ("abcde", False),
        ("abc", False),
        ("aB", False),
    ):
        assert _accepts(schema, value) == valid, value


def test_format_beside_lengths() -> None:
    uuid = {"type": "string", "format": "uuid", "minLength": 36, "maxLength": 36}
    assert _accepts(uuid, "123e4567-e89b-12d3-a456-426614174000")
    assert not _accepts(uuid, "123e4567-e89b-12d3-a456-42661417400")
    date = {"type": "string", "format": "date", "pattern": "^2024-"}
    assert (
        _accepts(date, "2024-02-29") and not _accepts(date, "2023-02-28") and not _accepts(date, "2024-02-30")
    )


def test_pydantic_http_url_compiles_strictly_and_keeps_its_length() -> None:
    """HttpUrl and AnyUrl: format uri with minLength 1 and maxLength 2,083 on one string."""
    schema = {"type": "string", "format": "uri", "minLength": 1, "maxLength": 2083}
    grammar = compile_json_schema(schema)
    for url in (
        "https://example.com/",
        "https://example.com/a/b?q=1&r=%20#top",
        "mailto:someone@example.org",
    ):
        assert grammar.matches(json.dumps(url)), url
    for text in ("", "not a uri", "https://exa mple.com", "http://" + "a" * 2077, "https://x/" + "%zz"):
        assert not grammar.matches(json.dumps(text)), text[:40]
    short = compile_json_schema({"type": "string", "format": "uri", "maxLength": 30})
    assert short.matches('"https://example.com/abc"') and not short.matches(
        json.dumps("https://example.com/" + "a" * 11)
    )


def test_pydantic_sets_stay_refused_by_name_strictly_and_named_when_lenient() -> None:
    """set[str] / frozenset[int]: uniqueItems over open-ended items needs every earlier item remembered, which
    no grammar of bounded size does; strict refuses it by name, lenient leaves it out and says so."""
    for items in ({"type": "string"}, {"type": "integer"}):
        schema = {"type": "array", "items": items, "uniqueItems": True}
        with pytest.raises(GrammarError, match="'uniqueItems'"):
            compile_json_schema(schema)
        assert compile_json_schema(schema, lenient=True).unenforced == ("uniqueItems at #",)


def test_pattern_properties_split_keys_by_the_patterns_they_match() -> None:
    schema = {
        "type": "object",
        "properties": {"Id": {"type": "integer"}, "x-id": {"type": "string"}},
        "patternProperties": {"^x-": {"maxLength": 3}, "^[a-z]+$": {"type": "boolean"}},
        "additionalProperties": False,
    }
    for value, valid in (
        ({"Id": 1}, True),
        ({"Id": 1, "x-a": "abc"}, True),
        ({"Id": 1, "x-a": "abcd"}, False),
        ({"Id": 1, "ok": True}, True),
        ({"Id": 1, "ok": 1}, False),
        ({"Id": 1, "X": True}, False),
        ({"x-id": "abc"}, True),
        ({"x-id": "abcd"}, False),
        ({"Id": 1, "x-a": 5}, True),
    ):
        assert _accepts(schema, value) == valid, value


def test_pattern_properties_with_additional_properties_for_the_rest() -> None:
    schema = {
        "patternProperties": {"^S_": {"type": "string"}, "^I_": {"type": "integer"}},
        "additionalProperties": {"type": "null"},
    }
    for value, valid in (
        ({"S_a": "x", "I_b": 2, "c": None}, True),
        ({"S_a": 1}, False),
        ({"c": 1}, False),
        ({"I_": 1, "S_": ""}, True),
        ({"a/b": None}, True),
    ):
        assert _accepts(schema, value) == valid, value


def test_pattern_properties_with_a_pattern_no_automaton_says_is_refused_by_name() -> None:
    schema = {"patternProperties": {"^(?!x)": {"type": "string"}}}
    with pytest.raises(GrammarError, match="'patternProperties'"):
        compile_json_schema(schema)
    assert compile_json_schema(schema, lenient=True).unenforced == ("patternProperties at #",)


def test_property_names_beside_declared_properties() -> None:
    schema = {
        "properties": {"ab": {}, "toolong": {}},
        "propertyNames": {"pattern": "^[a-z]+$", "maxLength": 4},
    }
    for value, valid in (
        ({"ab": 1}, True),
        ({"ab": 1, "cd": 2}, True),
        ({"toolong": 1}, False),
        ({"a1": 1}, False),
    ):
        assert _accepts(schema, value) == valid, value


def test_one_of_with_overlapping_branches_accepts_exactly_one() -> None:
    schema = {
        "oneOf": [
            {"properties": {"kind": {"const": "a"}}, "required": ["kind"]},
            {"properties": {"size": {"minimum": 3}}, "required": ["size"]},
        ]
    }
    for value, valid in (
        ({"kind": "a"}, True),
        ({"size": 5}, True),
        ({"kind": "a", "size": 5}, False),
        ({"kind": "a", "size": 1}, True),
        ({"kind": "b", "size": 1}, False),
        ("text", False),
    ):
        assert _accepts(schema, value) == valid, value


def test_one_of_whose_overlap_has_no_negation_is_refused_by_name() -> None:
    schema = {"oneOf": [{"type": "number"}, {"type": "number", "multipleOf": 0.5}]}
    with pytest.raises(GrammarError, match="'oneOf'"):
        compile_json_schema(schema)
    assert compile_json_schema(schema, lenient=True).unenforced == ("oneOf at #",)


def test_a_refusal_inside_exclusive_branches_names_both_and_gives_the_hint_once() -> None:
    schema = {
        "oneOf": [
            {"type": "array", "items": {"type": "integer"}, "minItems": 1},
            {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 2}},
        ]
    }
    with pytest.raises(GrammarError) as raised:
        compile_json_schema(schema)
    assert "'oneOf' at '#'" in raised.value.reason and "'contains' at '#/oneOf/1" in raised.value.reason
    assert raised.value.reason.count('"strict": false') == 1, raised.value.reason


def test_long_lengths_are_counted_exactly() -> None:
    """maxLength 65,535 was refused (GBNF unrolls x{0,n} into n rules); lengths.py counts in base 32."""
    for low, high in ((0, 600), (520, 700)):
        grammar = compile_json_schema({"type": "string", "minLength": low, "maxLength": high})
        for length, valid in ((low, True), (high, True), (high + 1, False), (max(low - 1, 0), low == 0)):
            assert grammar.matches(json.dumps("é" * length)) == valid, (low, high, length)
    for high in (65535, 2**31 - 1):
        grammar = compile_json_schema({"type": "string", "minLength": 2, "maxLength": high})
        assert grammar.matches('"abc"') and not grammar.matches('"a"')
