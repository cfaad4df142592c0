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
    """Subset construction and pruning in C (native/nfa_determinize.c): in Python they were the whole compile
    of a schema with a few long patterns (Github_medium o41810: 2,500 states, 0.3 s)."""
    found = _native.nfa_determinize(nfa.edges, nfa.epsilon, start, end, MAX_STATES)
    if found is None:
        raise _too_big("the pattern")
    transitions, accepting = found
    return minimized(CharDfa(transitions, frozenset(accepting)))


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
    """The equivalent automaton with the fewest states, numbered breadth first: Moore's partition refinement
    in C (native/dfa_minimize.c). A length counter of n states takes n rounds, and a pattern-heavy schema
    minimizes hundreds of automata; in numpy each round cost a tenth of a millisecond."""
    if dfa.empty:
        return dfa
    transitions, accepting = _native.dfa_minimize(dfa.transitions, dfa.accepting)
    return CharDfa(transitions, frozenset(accepting))


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
