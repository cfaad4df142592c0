"""The character automata built in C (native/nfa_determinize.c, native/dfa_minimize.c) are the ones the plain
Python constructions below give, state for state: subset construction over a pattern's NFA, and Moore's
refinement numbered breadth first."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from edge_runtime import _native
from edge_runtime.grammar.json_schema.char_dfa import (
    ANY,
    MAX_STATES,
    CharDfa,
    Transition,
    _Nfa,
    _pruned,
    complement,
    intersection,
    length_dfa,
    minimized,
    names_dfa,
    pattern_dfa,
)
from edge_runtime.grammar.json_schema.regex import _RegexParser, _Repeat, _Set, _strip_anchors, _top_options

_PATTERNS = ["^[a-z]{2,12}$", "^(ab|a)*b?$", "^[A-Z][a-z0-9_]{2,5}$", "x-", "^(?:[a-f0-9]{2}:){2}[a-f0-9]{2}$", "colou?r"]


def _moore(dfa: CharDfa) -> CharDfa:
    """Moore's refinement in plain Python, a pass over every transition per round, numbered breadth first:
    the reference `minimized` is checked against."""
    classes = [int(state in dfa.accepting) for state in range(len(dfa.transitions))]

    def merged_row(state: int) -> tuple[Transition, ...]:
        merged: list[Transition] = []
        for low, high, target in dfa.transitions[state]:
            if merged and merged[-1][1] == low - 1 and merged[-1][2] == classes[target]:
                merged[-1] = (merged[-1][0], high, classes[target])
            else:
                merged.append((low, high, classes[target]))
        return tuple(merged)

    while True:
        signatures: dict[tuple[object, ...], int] = {}
        refined = [
            signatures.setdefault((classes[state], merged_row(state)), len(signatures))
            for state in range(len(dfa.transitions))
        ]
        stable = len(signatures) == len(set(classes))
        classes = refined
        if stable:
            break
    representative: dict[int, int] = {}
    for state, number in enumerate(classes):
        representative.setdefault(number, state)
    rows = [merged_row(representative[number]) for number in range(len(representative))]
    start = classes[0]
    order = [start] + [n for n in range(len(rows)) if n != start]
    renumber = {n: i for i, n in enumerate(order)}
    out = [tuple((lo, hi, renumber[t]) for lo, hi, t in rows[n]) for n in order]
    return _pruned(out, {renumber[classes[s]] for s in dfa.accepting})  # breadth first


@pytest.mark.parametrize("pattern", _PATTERNS)
def test_minimization_is_moores(pattern: str) -> None:
    """`minimized` (C) gives the automaton plain Moore gives, state for state, on patterns cut to a length
    range, on their complements and on a long length counter; and the same strings as before minimizing."""
    rng = random.Random(pattern)
    for dfa in (
        intersection(pattern_dfa(pattern), length_dfa(0, 9)),
        complement(pattern_dfa(pattern)),
        intersection(complement(names_dfa(["ab", "abc", "colour", "x-y"])), pattern_dfa(pattern)),
        intersection(pattern_dfa(pattern), length_dfa(2, 300)),
    ):
        fast = minimized(dfa)
        assert fast == _moore(dfa)
        for _ in range(300):
            text = "".join(rng.choice("abcxyz-ABZ019_:ol") for _ in range(rng.randint(0, 10)))
            assert fast.matches(text) == dfa.matches(text), text


def test_minimization_of_random_automata_is_moores() -> None:
    """Random automata over a few ranges, with copies of states that some transitions lead to instead of the
    original (equivalent states to merge): the same minimum as the reference, and the empty language stays
    empty."""
    rng = random.Random(7)
    merged = 0
    for _ in range(300):
        n = rng.randint(1, 10)
        rows: list[list[Transition]] = []
        for _state in range(n):
            bounds = [0, *sorted(rng.sample(range(1, 40), rng.randint(0, 4))), 40]
            rows.append([(lo, hi - 1, rng.randrange(n)) for lo, hi in pairwise(bounds) if rng.random() < 0.7])
        accepting = {s for s in range(n) if rng.random() < 0.4}
        for _copy in range(rng.randint(0, n)):
            original = rng.randrange(len(rows))
            rows.append(list(rows[original]))
            if original in accepting:
                accepting.add(len(rows) - 1)
            for row in rows:
                row[:] = [(lo, hi, len(rows) - 1 if t == original and rng.random() < 0.5 else t) for lo, hi, t in row]
        dfa = _pruned([tuple(row) for row in rows], accepting)
        if dfa.empty:
            assert minimized(dfa).empty
            continue
        minimum = minimized(dfa)
        assert minimum == _moore(dfa)
        merged += len(dfa.transitions) - len(minimum.transitions)
    assert merged > 100  # the automata had equivalent states to merge


def _closure(nfa: _Nfa, states: set[int]) -> frozenset[int]:
    seen, pending = set(states), list(states)
    while pending:
        for target in nfa.epsilon[pending.pop()]:
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return frozenset(seen)


def _subsets(nfa: _Nfa, start: int, end: int) -> tuple[tuple[tuple[Transition, ...], ...], tuple[int, ...]]:
    """Subset construction in plain Python: each DFA state's characters cut at every range end, adjacent
    pieces reaching the same NFA states joined, new sets numbered as they are met."""
    numbers = {_closure(nfa, {start}): 0}
    order = list(numbers)
    rows = []
    for current in order:
        edges = [(lo, hi, target) for state in current for ranges, target in nfa.edges[state] for lo, hi in ranges]
        points = sorted({p for low, high, _ in edges for p in (low, high + 1)})
        row: list[tuple[int, int, frozenset[int]]] = []
        for low, following in pairwise(points):
            reached = frozenset(t for lo, hi, t in edges if lo <= low <= hi)
            if not reached:
                continue
            if row and row[-1][1] == low - 1 and row[-1][2] == reached:
                row[-1] = (row[-1][0], following - 1, reached)
            else:
                row.append((low, following - 1, reached))
        out = []
        for low, high, reached in row:
            target = _closure(nfa, set(reached))
            if target not in numbers:
                numbers[target] = len(order)
                order.append(target)
            out.append((low, high, numbers[target]))
        rows.append(tuple(out))
    return tuple(rows), tuple(numbers[s] for s in order if end in s)


def _pattern_nfa(pattern: str) -> tuple[_Nfa, int, int]:
    """The NFA `pattern_dfa` builds (search semantics: unanchored ends take any characters)."""
    nfa = _Nfa()
    start, end = nfa.state(), nfa.state()
    anything = _Repeat(_Set(ANY), 0, None)
    for starts, body, ends in (_strip_anchors(o, pattern) for o in _top_options(_RegexParser(pattern).parse())):
        state = start
        for part in ([] if starts else [anything]) + [body] + ([] if ends else [anything]):
            state = nfa.build(part, state)
        nfa.epsilon[state].append(end)
    return nfa, start, end


@pytest.mark.parametrize(
    "pattern",
    [*_PATTERNS, r"^\d{4}-\d{2}-\d{2}$", "[^a-z]+x", r"^(\w+\.)*\w+@\w+$", "(a|b|ab)*c", "^[à-ÿ]+$", ".*", ""],
)
def test_subset_construction_is_the_plain_one(pattern: str) -> None:
    """C's subset construction, pruned as `_pruned` prunes, state for state."""
    nfa, start, end = _pattern_nfa(pattern)
    rows, accepting = _subsets(nfa, start, end)
    expected = _pruned(list(rows), set(accepting))
    found = _native.nfa_determinize(nfa.edges, nfa.epsilon, start, end, MAX_STATES)
    assert found is not None
    assert CharDfa(found[0], frozenset(found[1])) == expected


def test_subset_construction_sorts_long_event_lists_in_any_order() -> None:
    """Over 256 events or states a DFA state's sort takes counting passes: alternatives of many characters
    (in rising, falling and shuffled order) and a closure of many states give the plain construction."""
    letters = [chr(0x100 + 9 * index) for index in range(400)]  # code points over 2^11 need a second pass
    shuffled = letters[:]
    random.Random(7).shuffle(shuffled)
    for order in (letters, letters[::-1], shuffled):
        pairs = "|".join(a + b for a, b in pairwise(order))
        for pattern in ("^(" + "|".join(order) + ")$", "^(" + pairs + ")$"):
            nfa, start, end = _pattern_nfa(pattern)
            rows, accepting = _subsets(nfa, start, end)
            found = _native.nfa_determinize(nfa.edges, nfa.epsilon, start, end, MAX_STATES)
            assert found is not None
            assert CharDfa(found[0], frozenset(found[1])) == _pruned(list(rows), set(accepting))


def test_subset_construction_stops_at_the_state_limit() -> None:
    nfa, start, end = _pattern_nfa("^[a-z]{2,12}$")
    assert len(_subsets(nfa, start, end)[0]) == 13
    assert _native.nfa_determinize(nfa.edges, nfa.epsilon, start, end, 13) is not None
    assert _native.nfa_determinize(nfa.edges, nfa.epsilon, start, end, 12) is None


def test_a_malformed_nfa_is_a_python_error() -> None:
    with pytest.raises(ValueError, match="not a state"):
        _native.nfa_determinize([[(((97, 97),), 5)]], [[]], 0, 0, 10)
    with pytest.raises(ValueError, match="not a range"):
        _native.nfa_determinize([[(((98, 97),), 0)]], [[]], 0, 0, 10)
    with pytest.raises(TypeError):
        _native.nfa_determinize([[]], [], 0, 0, 10)
