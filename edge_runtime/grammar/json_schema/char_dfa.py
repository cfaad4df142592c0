"""Regular languages over code points as deterministic automata: built from a pattern, intersected,
complemented, cut to a length range, and written as GBNF over JSON string content.

The JSON Schema compiler needs them where one string meets two constraints that no single GBNF expression
says: a pattern together with minLength/maxLength or a format, and the key classes of patternProperties
(names that match one pattern and none of the others, and no declared name). Every operation is exact; one
that would build more than MAX_STATES states refuses with GrammarError instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np

from edge_runtime import _native
from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.json_schema.char_sets import MAX_CODE_POINT, Ranges, json_char_set, normalized
from edge_runtime.grammar.json_schema.regex import (
    MAX_PATTERN_CHARS,
    _Node,
    _RegexParser,
    _strip_anchors,
    _top_options,
)
from edge_runtime.grammar.json_schema.regex import _Alt as RegexAlt
from edge_runtime.grammar.json_schema.regex import _Repeat as RegexRepeat
from edge_runtime.grammar.json_schema.regex import _Seq as RegexSeq
from edge_runtime.grammar.json_schema.regex import _Set as RegexSet

MAX_STATES = 4096
"""Most states one automaton (or the pattern's NFA) may have; past that the constraint is refused."""

ANY: Ranges = normalized([(0, MAX_CODE_POINT)])
"""Every character a JSON string can hold (code points without the surrogate block)."""

Transition = tuple[int, int, int]
"""(low, high, target): the characters low..high lead to state target."""


@dataclass(frozen=True)
class CharDfa:
    """State 0 starts; each state's transitions are sorted and disjoint; a missing character is a dead end.
    Every state can reach an accepting one (automata are pruned), so an empty language has no states."""

    transitions: tuple[tuple[Transition, ...], ...]
    accepting: frozenset[int]

    @property
    def empty(self) -> bool:
        return not self.transitions

    def matches(self, text: str) -> bool:
        if self.empty:
            return False
        state = 0
        for char in text:
            code = ord(char)
            for low, high, target in self.transitions[state]:
                if low <= code <= high:
                    state = target
                    break
            else:
                return False
        return state in self.accepting


# ------------------------------------------------------------------------------------------ building


def _too_big(what: str) -> GrammarError:
    return GrammarError(f"{what} needs more than {MAX_STATES} automaton states")


class _Nfa:
    """Thompson NFA: character edges and epsilon edges, one list of each per state."""

    def __init__(self) -> None:
        self.edges: list[list[tuple[Ranges, int]]] = []
        self.epsilon: list[list[int]] = []
        self.closures: dict[int, frozenset[int]] = {}

    def state(self) -> int:
        if len(self.edges) >= MAX_STATES * 4:
            raise _too_big("the pattern")
        self.edges.append([])
        self.epsilon.append([])
        return len(self.edges) - 1

    def build(self, node: object, start: int) -> int:
        """Adds `node` from `start`; returns its end state."""
        if isinstance(node, RegexSet):
            end = self.state()
            if node.ranges:
                self.edges[start].append((node.ranges, end))
            return end
        if isinstance(node, RegexSeq):
            for item in node.items:
                start = self.build(item, start)
            return start
        if isinstance(node, RegexAlt):
            end = self.state()
            for option in node.options:
                self.epsilon[self.build(option, start)].append(end)
            return end
        if isinstance(node, RegexRepeat):
            for _ in range(node.min):
                start = self.build(node.item, start)
            # Every construct ends in a fresh state with no edges out, so an epsilon edge that skips it
            # can never land inside its loop.
            end = self.state()
            if node.max is None:
                loop = self.state()
                self.epsilon[start].append(loop)
                self.epsilon[loop].append(end)
                self.epsilon[self.build(node.item, loop)].append(loop)
                return end
            for _ in range(node.max - node.min):
                self.epsilon[start].append(end)
                start = self.build(node.item, start)
            self.epsilon[start].append(end)
            return end
        raise GrammarError("an anchor inside a pattern cannot be compiled to a grammar")

    def closure(self, states: Iterable[int]) -> frozenset[int]:
        """The states `states` reach by epsilon edges, as the union of each state's own closure (computed
        once per state: subset construction asks for the same states' closures again and again)."""
        found: set[int] = set()
        for state in states:
            own = self.closures.get(state)
            if own is None:
                own = self.closures[state] = self._closure_of(state)
            found |= own
        return frozenset(found)

    def _closure_of(self, state: int) -> frozenset[int]:
        seen = {state}
        pending = [state]
        while pending:
            for target in self.epsilon[pending.pop()]:
                if target not in seen:
                    seen.add(target)
                    pending.append(target)
        return frozenset(seen)


def _split(edges: list[tuple[Ranges, int]]) -> list[tuple[int, int, frozenset[int]]]:
    """The characters of `edges` cut into disjoint intervals, each with the set of targets it reaches: one
    sweep over the range ends, counting how many ranges of each target are open."""
    changes: dict[int, list[tuple[int, int]]] = {}
    for ranges, target in edges:
        for low, high in ranges:
            changes.setdefault(low, []).append((target, 1))
            changes.setdefault(high + 1, []).append((target, -1))
    points = sorted(changes)
    open_ranges: dict[int, int] = {}
    out: list[tuple[int, int, frozenset[int]]] = []
    for low, following in pairwise(points):
        for target, step in changes[low]:
            count = open_ranges.get(target, 0) + step
            if count:
                open_ranges[target] = count
            else:
                del open_ranges[target]
        if not open_ranges:
            continue
        targets = frozenset(open_ranges)
        if out and out[-1][1] == low - 1 and out[-1][2] == targets:
            out[-1] = (out[-1][0], following - 1, targets)
        else:
            out.append((low, following - 1, targets))
    return out


@lru_cache(maxsize=1024)
def pattern_dfa(pattern: str) -> CharDfa:
    """The strings (as code points) in which `pattern` (ECMAScript, search semantics) finds a match. Memoized:
    a schema's patterns come back with every merge of their object (51 distinct among 211 near the corpus'
    p99); a pattern with no automaton here raises each time."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise GrammarError(f"a pattern of {len(pattern)} characters exceeds the limit of {MAX_PATTERN_CHARS}")
    nfa = _Nfa()
    start = nfa.state()
    end = nfa.state()
    anything = RegexRepeat(RegexSet(ANY), 0, None)
    options: list[_Node] = _top_options(_RegexParser(pattern).parse())
    for starts, body, ends in (_strip_anchors(option, pattern) for option in options):
        state = start
        for part in ([] if starts else [anything]) + [body] + ([] if ends else [anything]):
            state = nfa.build(part, state)
        nfa.epsilon[state].append(end)
    return _determinize(nfa, start, end)


def _determinize(nfa: _Nfa, start: int, end: int) -> CharDfa:
    first = nfa.closure([start])
    closures: dict[frozenset[int], frozenset[int]] = {}
    numbers = {first: 0}
    order = [first]
    transitions: list[tuple[Transition, ...]] = []
    for current in order:
        row = []
        for low, high, targets in _split([edge for state in current for edge in nfa.edges[state]]):
            target = closures.get(targets)
            if target is None:
                target = closures[targets] = nfa.closure(targets)
            if target not in numbers:
                if len(numbers) >= MAX_STATES:
                    raise _too_big("the pattern")
                numbers[target] = len(order)
                order.append(target)
            row.append((low, high, numbers[target]))
        transitions.append(tuple(row))
    return minimized(_pruned(transitions, {numbers[s] for s in order if end in s}))


def names_dfa(names: Iterable[str]) -> CharDfa:
    """Exactly the strings `names`."""
    transitions: list[dict[int, int]] = [{}]
    accepting = set()
    for name in names:
        state = 0
        for char in name:
            code = ord(char)
            if code not in transitions[state]:
                transitions.append({})
                transitions[state][code] = len(transitions) - 1
            state = transitions[state][code]
        accepting.add(state)
    rows = [tuple((code, code, target) for code, target in sorted(row.items())) for row in transitions]
    return _pruned(rows, accepting)


def length_dfa(low: int, high: int | None) -> CharDfa:
    """Every string of `low` to `high` characters (None: no maximum)."""
    count = (high if high is not None else low) + 1
    if count > MAX_STATES:
        raise _too_big(f"a length of {count - 1}")
    rows = []
    for state in range(count):
        following = state + 1 if state + 1 < count else (state if high is None else None)
        rows.append(tuple((lo, hi, following) for lo, hi in ANY) if following is not None else ())
    return _pruned(rows, {s for s in range(count) if s >= low})


# ------------------------------------------------------------------------------------------ operations


def intersection(a: CharDfa, b: CharDfa) -> CharDfa:
    """The strings both accept (not minimized: a product with a length counter has ~no equal states, and
    minimizing it costs a round per length). The product and its pruning run in C (native/dfa_product.c):
    over nine tenths of a pattern-heavy compile was this loop in Python."""
    if a.empty or b.empty:
        return CharDfa((), frozenset())
    found = _native.dfa_product(a.transitions, a.accepting, b.transitions, b.accepting, MAX_STATES)
    if found is None:
        raise _too_big("combining these string constraints")
    transitions, accepting = found
    return CharDfa(transitions, frozenset(accepting))


def complement(dfa: CharDfa) -> CharDfa:
    """The strings `dfa` rejects."""
    dead = len(dfa.transitions)
    rows: list[tuple[Transition, ...]] = []
    for row in (*dfa.transitions, ()):
        filled: list[Transition] = []
        cursor = 0
        for low, high, target in row:
            filled.extend((lo, hi, dead) for lo, hi in _gaps(cursor, low - 1))
            filled.append((low, high, target))
            cursor = high + 1
        filled.extend((lo, hi, dead) for lo, hi in _gaps(cursor, MAX_CODE_POINT))
        rows.append(tuple(filled))
    if dfa.empty:
        rows = [tuple((lo, hi, 0) for lo, hi in ANY)]
        return _pruned(rows, {0})
    accepting = set(range(dead + 1)) - set(dfa.accepting)
    return _pruned(rows, accepting)


def minimized(dfa: CharDfa) -> CharDfa:
    """The equivalent automaton with the fewest states: Moore's partition refinement over the atoms (the
    intervals no transition boundary cuts). A length counter of n states takes n rounds; each round is a few
    numpy operations (the signature of a state, hashed to one integer) instead of a Python pass over every
    transition (a 257-state maxLength counter took 0.4 s). The hashed partition is checked exactly at the
    end, and the exact loop decides should a hash ever collide."""
    if dfa.empty:
        return dfa
    points = sorted({p for row in dfa.transitions for low, high, _ in row for p in (low, high + 1)})
    atom = {point: index for index, point in enumerate(points)}
    n = len(dfa.transitions)
    table = np.full((n, max(0, len(points) - 1)), n, dtype=np.int64)
    """The target per state and atom; n (no state) where no transition goes."""
    for state, row in enumerate(dfa.transitions):
        for low, high, target in row:
            table[state, atom[low] : atom[high + 1]] = target
    classes = _refined(table, dfa.accepting)
    if classes is None:
        return _minimized_exactly(dfa)
    return _merged(dfa, table, points, classes)


_SIGNATURE_WEIGHTS = np.random.default_rng(20261128).integers(1, 2**63, size=4096, dtype=np.uint64) | 1


def _refined(table: np.ndarray, accepting: frozenset[int]) -> np.ndarray | None:
    """The coarsest partition of the states that separates accepting ones and that each atom respects (class
    per state), or None if the hashed rounds ended on a partition that is not stable (a collision)."""
    n, atoms = table.shape
    if atoms + 1 > len(_SIGNATURE_WEIGHTS):
        return None
    weights = _SIGNATURE_WEIGHTS[: atoms + 1]
    classes = np.zeros(n, dtype=np.int64)
    classes[list(accepting)] = 1
    count = len(np.unique(classes))
    while True:
        with_none = np.append(classes, -1)
        signatures = np.column_stack([classes, with_none[table]]).astype(np.uint64) @ weights
        _, refined = np.unique(signatures, return_inverse=True)
        refined = refined.reshape(-1)
        refined_count = int(refined.max()) + 1
        classes = refined
        if refined_count == count:
            break
        count = refined_count
    # Stable and exact: within each class every state agrees on accepting and on each atom's target class.
    accepts = np.zeros(n, dtype=np.int64)
    accepts[list(accepting)] = 1
    rows = np.column_stack([classes, accepts, np.append(classes, -1)[table]])
    return classes if np.unique(rows, axis=0).shape[0] == count else None


def _merged(dfa: CharDfa, table: np.ndarray, points: list[int], classes: np.ndarray) -> CharDfa:
    """`dfa` with the states of each class merged, state 0's class first."""
    count = int(classes.max()) + 1
    start = int(classes[0])
    order = [start] + [number for number in range(count) if number != start]
    renumber = np.empty(count + 1, dtype=np.int64)
    renumber[order] = np.arange(count)
    renumber[count] = -1
    _, representative = np.unique(classes, return_index=True)  # the first state of each class
    targets = renumber[np.append(classes, count)[table[representative[order]]]]
    rows: list[list[Transition]] = [[] for _ in range(count)]
    if targets.size:
        _add_runs(rows, targets, points)
    return CharDfa(
        tuple(map(tuple, rows)), frozenset(int(renumber[classes[state]]) for state in dfa.accepting)
    )


def _add_runs(rows: list[list[Transition]], targets: np.ndarray, points: list[int]) -> None:
    """The transitions of each row of `targets` (the target per atom, -1 for none) into `rows`."""
    # Atoms are adjacent intervals, so a row's transitions are its runs of equal targets.
    starts = np.ones(targets.shape, dtype=bool)
    starts[:, 1:] = targets[:, 1:] != targets[:, :-1]
    run_rows, run_starts = np.nonzero(starts)
    run_ends = np.append(run_starts[1:], 0) - 1
    last_in_row = np.append(run_rows[1:] != run_rows[:-1], True)
    run_ends[last_in_row] = targets.shape[1] - 1
    bounds = np.asarray(points, dtype=np.int64)
    kept = targets[run_rows, run_starts] >= 0
    for row, low, high, target in zip(
        run_rows[kept].tolist(),
        bounds[run_starts[kept]].tolist(),
        (bounds[run_ends[kept] + 1] - 1).tolist(),
        targets[run_rows[kept], run_starts[kept]].tolist(),
    ):
        rows[row].append((low, high, target))


def _minimized_exactly(dfa: CharDfa) -> CharDfa:
    """`minimized` by Moore's refinement in plain Python, a pass over every transition per round."""
    if dfa.empty:
        return dfa
    classes = [int(state in dfa.accepting) for state in range(len(dfa.transitions))]
    while True:
        signatures: dict[tuple[object, ...], int] = {}
        refined = []
        for state, row in enumerate(dfa.transitions):
            merged: list[Transition] = []
            for low, high, target in row:
                if merged and merged[-1][1] == low - 1 and merged[-1][2] == classes[target]:
                    merged[-1] = (merged[-1][0], high, classes[target])
                else:
                    merged.append((low, high, classes[target]))
            refined.append(signatures.setdefault((classes[state], *merged), len(signatures)))
        stable = len(signatures) == len(set(classes))
        classes = refined
        if stable:
            break
    representative: dict[int, int] = {}
    for state, number in enumerate(classes):
        representative.setdefault(number, state)
    rows = []
    for number in range(len(representative)):
        merged = []
        for low, high, target in dfa.transitions[representative[number]]:
            if merged and merged[-1][1] == low - 1 and merged[-1][2] == classes[target]:
                merged[-1] = (merged[-1][0], high, classes[target])
            else:
                merged.append((low, high, classes[target]))
        rows.append(tuple(merged))
    start = classes[0]
    order = [start] + [n for n in range(len(rows)) if n != start]
    renumber = {n: i for i, n in enumerate(order)}
    out = tuple(tuple((lo, hi, renumber[t]) for lo, hi, t in rows[n]) for n in order)
    return CharDfa(out, frozenset(renumber[classes[s]] for s in dfa.accepting))


@lru_cache(maxsize=4096)
def _gaps(low: int, high: int) -> tuple[tuple[int, int], ...]:
    """low..high without the surrogates (cached: complements ask for the same few gaps again and again)."""
    return () if low > high else tuple(normalized([(low, high)]))


def _pruned(rows: list[tuple[Transition, ...]], accepting: set[int]) -> CharDfa:
    """Only the states reachable from 0 that can reach an accepting state, renumbered from 0."""
    reverse: list[list[int]] = [[] for _ in rows]
    for source, transitions in enumerate(rows):
        for _, _, target in transitions:
            reverse[target].append(source)
    alive = set(accepting)
    pending = list(alive)
    while pending:
        for source in reverse[pending.pop()]:
            if source not in alive:
                alive.add(source)
                pending.append(source)
    if 0 not in alive:
        return CharDfa((), frozenset())
    numbers = {0: 0}
    order = [0]
    out: list[tuple[Transition, ...]] = []
    for state in order:
        row: list[Transition] = []
        for low, high, target in rows[state]:
            if target not in alive:
                continue
            if target not in numbers:
                numbers[target] = len(order)
                order.append(target)
            row.append((low, high, numbers[target]))
        out.append(tuple(row))
    return CharDfa(tuple(out), frozenset(numbers[s] for s in order if s in accepting))


# ------------------------------------------------------------------------------------------ GBNF


@lru_cache(maxsize=4096)
def _char_set(ranges: Ranges, canonical: bool) -> str | None:
    return json_char_set(ranges, canonical=canonical)


def dfa_to_gbnf(dfa: CharDfa, new_rule: Callable[[str], str], define: Callable[[str, str], None],
                canonical: bool = False) -> str | None:
    """GBNF for the JSON string content of the strings `dfa` accepts (one rule per state, made with
    `new_rule(hint)` and `define(name, body)`); `canonical`: each character in JSON's one canonical
    spelling, as keys are written. None for the empty language."""
    if dfa.empty:
        return None
    names = [new_rule("dfa") for _ in dfa.transitions]
    for state, row in enumerate(dfa.transitions):
        by_target: dict[int, list[tuple[int, int]]] = {}
        for low, high, target in row:
            by_target.setdefault(target, []).append((low, high))
        options = []
        for target, ranges in by_target.items():
            chars = _char_set(tuple(ranges), canonical)
            if chars is not None:
                options.append(f"{chars} {names[target]}")
        if state in dfa.accepting:
            options.append('""')
        define(names[state], " | ".join(options) if options else '""')
    return names[0]
