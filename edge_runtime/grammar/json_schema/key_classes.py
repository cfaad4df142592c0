"""The keys of an object's undeclared properties, split by which patternProperties they match.

A key that no declared name equals gets the schemas of every patternProperties pattern it matches, and
additionalProperties only when it matches none. Each set of matched patterns is one class of keys: the
intersection of those patterns' automata with the complements of the others' and of the declared names
(and with propertyNames where it is a string automaton). Classes with no key drop out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.json_schema.char_dfa import (
    CharDfa,
    complement,
    intersection,
    length_dfa,
    minimized,
    names_dfa,
    pattern_dfa,
)
from edge_runtime.grammar.json_schema.keywords import ALL_PATTERNS, ANNOTATIONS, NOT_PATTERNS, TYPES
from edge_runtime.grammar.json_schema.string_sets import pattern_complement, string_dfa

MAX_PATTERNS = 6
"""Most patternProperties patterns per object (the classes are the sets of patterns a key matches)."""

_NAME_KEYWORDS = frozenset(
    {"type", "pattern", "minLength", "maxLength", "format", "enum", "const", "not", ALL_PATTERNS, NOT_PATTERNS}
)


@dataclass(frozen=True)
class PatternProperty:
    pattern: str
    dfa: CharDfa
    schema: Any
    pointer: str


@dataclass(frozen=True)
class KeyClass:
    """Undeclared keys `dfa` accepts, whose values satisfy every one of `schemas` (none: additionalProperties
    applies instead)."""

    dfa: CharDfa
    schemas: tuple[Any, ...]
    pointers: tuple[str, ...]


@dataclass(frozen=True)
class Witness:
    """A property an object must have (what a negation of additionalProperties, patternProperties or
    propertyNames says): a key `keys` accepts whose value meets `value`."""

    keys: CharDfa
    value: Any


def witness_of(spec: Any) -> Witness | None:
    """The witness a SOME_PROPERTY entry describes ({"value", and the keys: "pattern" they match, "notPatterns"
    and "notNames" they avoid, "notKeys" a propertyNames schema they fail}), or None when its keys have no
    automaton here."""
    if not isinstance(spec, dict) or "value" not in spec:
        return None
    parts = {name: spec[name] for name in _WITNESS_KEY_PARTS if name in spec}
    try:
        text = json.dumps(parts)
    except (TypeError, ValueError):  # a merge left a value JSON does not write: not memoized
        keys = _witness_keys(parts)
    else:
        keys = _memoized_witness_keys(text)
    return None if keys is None else Witness(keys, spec["value"])


_WITNESS_KEY_PARTS = ("pattern", "notPatterns", "notNames", "notKeys")


@lru_cache(maxsize=1024)
def _memoized_witness_keys(parts_json: str) -> CharDfa | None:
    """`_witness_keys` by the JSON of what says the keys: negations repeat a few witnesses over every object
    they reach (4 distinct among 100 in Github_ultra o65429, 1.5 of its 3.5 s)."""
    return _witness_keys(json.loads(parts_json))


def _witness_keys(spec: dict[str, Any]) -> CharDfa | None:
    """The automaton of the keys a witness's "pattern", "notPatterns", "notNames" and "notKeys" allow."""
    try:
        parts = [pattern_dfa(spec["pattern"])] if isinstance(spec.get("pattern"), str) else []
        parts += [pattern_complement(p) for p in spec.get("notPatterns", ())]
        if spec.get("notNames"):
            parts.append(complement(names_dfa(spec["notNames"])))
        if "notKeys" in spec:
            named = property_names_dfa(spec["notKeys"])
            if named is None:
                return None
            parts.append(complement(named))
    except GrammarError:
        return None
    keys = length_dfa(0, None)
    for part in parts:
        keys = minimized(intersection(keys, part))
    return keys


def pattern_properties(schema: dict[str, Any], pointer: str) -> list[PatternProperty]:
    """The object's patternProperties with their automata; GrammarError (naming the pattern) when a pattern
    has none or there are too many."""
    found = schema.get("patternProperties") or {}
    if not isinstance(found, dict):
        raise GrammarError(f"invalid schema at '{pointer}': patternProperties must be an object")
    if len(found) > MAX_PATTERNS:
        raise GrammarError(f"more than {MAX_PATTERNS} patterns")
    out = []
    for pattern, sub in found.items():
        out.append(PatternProperty(pattern, pattern_dfa(pattern), sub, f"{pointer}/patternProperties/{pattern}"))
    return out


def property_names_dfa(names_schema: Any) -> CharDfa | None:
    """The automaton of the keys propertyNames allows, when it is a string schema of patterns, lengths,
    format, enum/const and `not` of such schemas; None otherwise (True and {} included: they allow every
    key)."""
    if names_schema is True or names_schema == {}:
        return None
    return _keys_dfa(names_schema)


def _keys_dfa(names_schema: Any) -> CharDfa | None:
    if names_schema is True or names_schema is False:
        return length_dfa(0, None) if names_schema else CharDfa((), frozenset())
    if not isinstance(names_schema, dict) or set(names_schema) - ANNOTATIONS - _NAME_KEYWORDS:
        return None
    declared = names_schema.get("type", "string")
    if declared != "string" and not (isinstance(declared, list) and "string" in declared):
        return None if declared not in TYPES and not isinstance(declared, list) else CharDfa((), frozenset())
    low = names_schema.get("minLength", 0)
    high = names_schema.get("maxLength")
    if not isinstance(low, int) or not (high is None or isinstance(high, int)):
        return None
    dfa = string_dfa(names_schema, low, high, None)
    if dfa is None:
        return None
    values = [names_schema["const"]] if "const" in names_schema else names_schema.get("enum")
    if values is not None:
        if not isinstance(values, list):
            return None
        dfa = intersection(dfa, names_dfa([value for value in values if isinstance(value, str)]))
    if "not" in names_schema:
        excluded = _keys_dfa(names_schema["not"])
        if excluded is None:
            return None
        dfa = intersection(dfa, complement(excluded))
    return minimized(dfa)


def key_classes(
    patterns: list[PatternProperty], declared: list[str], allowed: CharDfa | None
) -> list[KeyClass]:
    """One class per set of patterns some undeclared key matches exactly (the empty set: the keys of
    additionalProperties), keys limited to `allowed` when given."""
    return [
        KeyClass(dfa, tuple(patterns[i].schema for i in chosen), tuple(patterns[i].pointer for i in chosen))
        for chosen, dfa in _class_automata(tuple(p.pattern for p in patterns), tuple(declared), allowed)
    ]


@lru_cache(maxsize=256)
def _class_automata(
    patterns: tuple[str, ...], declared: tuple[str, ...], allowed: CharDfa | None
) -> tuple[tuple[tuple[int, ...], CharDfa], ...]:
    """`key_classes`' automata, by pattern indexes. Memoized: merges compile an object's patterns beside the
    same declared names again and again (250 calls near the corpus' p99, most of their automata work)."""
    base = complement(names_dfa(declared)) if declared else length_dfa(0, None)
    if allowed is not None:
        base = intersection(base, allowed)
    sides = [(pattern_dfa(pattern), pattern_complement(pattern)) for pattern in patterns]
    classes: list[tuple[tuple[int, ...], CharDfa]] = []
    # Depth first over "matches pattern i or not", one pattern per level: each prefix of choices is
    # intersected once and shared by everything below it, and an empty one cuts its whole subtree.
    pending: list[tuple[int, tuple[int, ...], CharDfa]] = [(0, (), base)]
    while pending:
        level, chosen, dfa = pending.pop()
        if dfa.empty:
            continue
        if level == len(patterns):
            classes.append((chosen, dfa))
            continue
        matching, other = sides[level]
        pending.append((level + 1, chosen, minimized(intersection(dfa, other))))
        pending.append((level + 1, (*chosen, level), minimized(intersection(dfa, matching))))
    classes.sort(key=lambda found: (len(found[0]), found[0]))  # by class size, as combinations() lists them
    return tuple(classes)
