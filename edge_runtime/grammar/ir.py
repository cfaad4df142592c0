"""The compiled grammar: a context-free grammar over bytes, flattened into integer arrays.

Layout (the C port walks exactly these arrays):
- `kinds[i]`, `values[i]`: element i. BYTES: value is a row of `byte_classes` (a 256-entry table of the bytes
  it matches); RULE: value is a rule id; TOKEN / TOKEN_NOT: value is a token id (the whole token must be, or
  must not be, that id); END closes an alternative.
- rule r's alternatives begin at `alt_starts[rule_alts[r] : rule_alts[r + 1]]`; each runs to its END.
A parse position is an element index; a pushdown stack is a sequence of positions (top last).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from itertools import chain

import numpy as np

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.syntax import (
    Alternatives,
    CharClass,
    GrammarSyntax,
    Literal,
    Node,
    Repeat,
    RuleRef,
    Sequence,
    TokenRef,
)
from edge_runtime.grammar.utf8 import normalize_ranges, utf8_sequences

MAX_REPEATED_COPIES = 2_000_000
"""Items a grammar's repetition minimums may write out in all: `"a"{10000}` is 10,000 elements, so without a
bound 512 KiB of text could ask for gigabytes (real grammars: under 70,000 elements). The C lowering is given
it (native_lowering.py)."""


class ElementKind(IntEnum):
    END = 0
    BYTES = 1
    RULE = 2
    TOKEN = 3
    TOKEN_NOT = 4


Element = tuple[int, int]

_END = int(ElementKind.END)
_BYTES = int(ElementKind.BYTES)
_RULE = int(ElementKind.RULE)
_TOKEN = int(ElementKind.TOKEN)
_TOKEN_NOT = int(ElementKind.TOKEN_NOT)
"""Plain ints in the builder's element lists: numpy converts them far faster than IntEnum members."""


@dataclass(frozen=True, eq=False)
class FlatGrammar:
    kinds: np.ndarray
    """uint8, one per element."""
    values: np.ndarray
    """int32, one per element."""
    rule_alts: np.ndarray
    """int32, n_rules + 1 offsets into alt_starts."""
    alt_starts: np.ndarray
    """int32 element index where each alternative begins."""
    byte_classes: np.ndarray
    """bool [n_classes, 256]."""
    root: int
    rule_names: tuple[str, ...]
    """Source rule names; helper rules are named `<rule>~<n>` after the rule they came from."""

    @property
    def n_rules(self) -> int:
        return len(self.rule_names)


def byte_class_rows(packed: bytes) -> np.ndarray:
    """`FlatGrammar.byte_classes` from 32 bytes per class, byte b set in bit b % 8 of byte b // 8."""
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), bitorder="little")
    return bits.astype(bool).reshape(-1, 256)


def compile_syntax(syntax: GrammarSyntax) -> FlatGrammar:
    """Lower the code-point syntax tree to the flat byte grammar; refuses left recursion and rules that
    can never finish."""
    builder = _Builder(syntax)
    flat = builder.flatten()
    references = _References(builder.rules)
    _check_left_recursion(builder.rules, builder.names, builder.origins, references)
    _check_productive(builder.names, builder.origins, references)
    return flat


class _Builder:
    def __init__(self, syntax: GrammarSyntax) -> None:
        self.rule_ids = {rule.name: index for index, rule in enumerate(syntax.rules)}
        self.names = [rule.name for rule in syntax.rules]
        self.origins = [(rule.line, rule.column) for rule in syntax.rules]
        self.rules: list[list[list[Element]]] = [[] for _ in syntax.rules]
        self.helper_ids: dict[tuple[object, ...], int] = {}
        self.class_ids: dict[int, int] = {}
        self.copies = 0
        """Items written out by repetition minimums so far (see MAX_REPEATED_COPIES)."""
        self.current = 0
        for index, rule in enumerate(syntax.rules):
            self.current = index
            self.rules[index] = [self.sequence(option) for option in rule.body.options]

    def flatten(self) -> FlatGrammar:
        closed = [[*elements, (_END, 0)] for alternatives in self.rules for elements in alternatives]
        lengths = np.fromiter(map(len, closed), dtype=np.int64, count=len(closed))
        alt_starts = np.cumsum(lengths) - lengths
        rule_alts = np.cumsum([0, *map(len, self.rules)])
        flat = list(chain.from_iterable(chain.from_iterable(closed)))
        pairs = np.array(flat, dtype=np.int32).reshape(-1, 2)
        classes = byte_class_rows(b"".join(bits.to_bytes(32, "little") for bits in self.class_ids))
        return FlatGrammar(
            kinds=pairs[:, 0].astype(np.uint8),
            values=np.ascontiguousarray(pairs[:, 1]),
            rule_alts=rule_alts.astype(np.int32),
            alt_starts=alt_starts.astype(np.int32),
            byte_classes=classes,
            root=self.rule_ids["root"],
            rule_names=tuple(self.names),
        )

    def helper(self, key: tuple[object, ...], alternatives: list[list[Element]]) -> Element:
        """A helper rule with these alternatives; identical ones are shared."""
        found = self.helper_ids.get(key)
        if found is None:
            found = self.new_rule()
            self.rules[found] = alternatives
            self.helper_ids[key] = found
        return (_RULE, found)

    def new_rule(self) -> int:
        rule_id = len(self.rules)
        self.rules.append([])
        self.names.append(f"{self.names[self.current]}~{rule_id}")
        self.origins.append(self.origins[self.current])
        return rule_id

    def sequence(self, node: Sequence) -> list[Element]:
        out: list[Element] = []
        for item in node.items:
            self.emit(item, out)
        return out

    def emit(self, node: Node, out: list[Element]) -> None:
        if isinstance(node, Literal):
            class_ids = self.class_ids
            out.extend(
                (_BYTES, class_ids.setdefault(1 << byte, len(class_ids)))
                for byte in node.text.encode("utf-8")
            )
        elif isinstance(node, CharClass):
            self.emit_class(node, out)
        elif isinstance(node, RuleRef):
            out.append((_RULE, self.rule_ids[node.name]))
        elif isinstance(node, TokenRef):
            out.append((_TOKEN_NOT if node.negated else _TOKEN, node.token_id))
        elif isinstance(node, Sequence):
            out.extend(self.sequence(node))
        elif isinstance(node, Alternatives):
            options = [self.sequence(option) for option in node.options]
            if len(options) == 1:
                out.extend(options[0])
            else:
                out.append(self.helper(("|", *map(tuple, options)), options))
        else:
            self.emit_repeat(node, out)

    def emit_class(self, node: CharClass, out: list[Element]) -> None:
        single, multi = _class_byte_sets(node.ranges, node.negated)
        class_ids = self.class_ids
        options = [
            [(_BYTES, class_ids.setdefault(bits, len(class_ids))) for bits in seq] for seq in multi
        ]
        if single:
            options.insert(0, [(_BYTES, class_ids.setdefault(single, len(class_ids)))])
        if len(options) == 1:
            out.extend(options[0])
        else:
            out.append(self.helper(("[]", *map(tuple, options)), options))

    def emit_repeat(self, node: Repeat, out: list[Element]) -> None:
        item: list[Element] = []
        self.emit(node.item, item)
        if not item:
            return
        if len(item) > 1:
            item = [self.helper(("()", tuple(item)), [item])]
        self.copies += node.min
        if self.copies > MAX_REPEATED_COPIES:
            raise GrammarError(
                f"the grammar's repetitions ask for over {MAX_REPEATED_COPIES:,} copies of their items in all "
                "(the sum of the minimums in {m}, {m,} and {m,n})"
            )
        out.extend(item * node.min)
        if node.max is None:
            out.append(self.star(item[0]))
            return
        tail: Element | None = None
        for _ in range(node.max - node.min):
            with_tail = [item[0], tail] if tail is not None else [item[0]]
            tail = self.helper(("?", item[0], tail), [with_tail, []])
        if tail is not None:
            out.append(tail)

    def star(self, item: Element) -> Element:
        """`item*` as `S ::= item S | ` (the reference is last, so matching it never deepens the stack)."""
        key = ("*", item)
        found = self.helper_ids.get(key)
        if found is None:
            found = self.new_rule()
            self.helper_ids[key] = found
            self.rules[found] = [[item, (_RULE, found)], []]
        return (_RULE, found)


@lru_cache(maxsize=4096)
def _class_byte_sets(
    ranges: tuple[tuple[int, int], ...], negated: bool
) -> tuple[int, tuple[tuple[int, ...], ...]]:
    """A code point class as byte sets (ints, bit b for byte b): the one-byte characters as one set (0 when
    none), then one tuple of sets per multi-byte sequence. Memoized: grammars from schemas repeat a few
    large Unicode classes many times, and splitting them into UTF-8 sequences is the slow part."""
    sequences = utf8_sequences(normalize_ranges(ranges, negated))
    single = 0
    for seq in sequences:
        if len(seq) == 1:
            low, high = seq[0]
            single |= ((1 << (high + 1)) - 1) ^ ((1 << low) - 1)
    multi = tuple(
        tuple(((1 << (high + 1)) - 1) ^ ((1 << low) - 1) for low, high in seq) for seq in sequences if len(seq) > 1
    )
    return single, multi


class _References:
    """Per alternative of every rule: its rule, the rules it references, and whether it holds nothing but
    references. Taken once and shared by both checks, which each walked every element before."""

    def __init__(self, rules: list[list[list[Element]]]) -> None:
        self.n_rules = len(rules)
        self.owner: list[int] = []
        self.refs: list[set[int]] = []
        self.only_refs: list[bool] = []
        self.without_alternatives: list[int] = []
        for rule_id, alternatives in enumerate(rules):
            if not alternatives:
                self.without_alternatives.append(rule_id)
            for elements in alternatives:
                found = [value for kind, value in elements if kind == _RULE]
                self.owner.append(rule_id)
                self.refs.append(set(found))
                self.only_refs.append(len(found) == len(elements))


def _check_left_recursion(
    rules: list[list[list[Element]]], names: list[str], origins: list[tuple[int, int]], references: _References
) -> None:
    """Refuse a rule that can reach itself without consuming input through a reference that keeps a frame
    (one not last in its alternative): expanding it would push frames forever. Cycles through last-position
    references only (`x*` with a nullable `x`) replace frames instead, and the closure's dedup ends them."""
    nullable = _rules_with_a_finished_alternative(references, references.only_refs, mark_empty=False)
    left_edges: list[list[tuple[int, bool]]] = []
    for alternatives in rules:
        edges: list[tuple[int, bool]] = []
        for elements in alternatives:
            last = len(elements) - 1
            for position, (kind, value) in enumerate(elements):
                if kind != _RULE:
                    break
                edges.append((value, position == last))
                if not nullable[value]:
                    break
        left_edges.append(edges)
    component = _strongly_connected_components([[target for target, _ in edges] for edges in left_edges])
    for source, edges in enumerate(left_edges):
        for target, is_tail in edges:
            if not is_tail and component[source] == component[target]:
                _raise_left_recursion(_cycle(source, target, left_edges, component), names, origins)


def _check_productive(names: list[str], origins: list[tuple[int, int]], references: _References) -> None:
    """Refuse a rule none of whose alternatives can ever end (`root ::= root`, a schema that `$ref`s only
    itself): a matcher inside it would find no allowed token. A rule with no alternatives (an empty class)
    matches nothing by construction, not by recursion, and counts as finishing. Worklist over the rules
    each alternative waits on."""
    productive = _rules_with_a_finished_alternative(references, None, mark_empty=True)
    endless = [rule_id for rule_id, ok in enumerate(productive) if not ok]
    if endless:
        shown = list(dict.fromkeys(names[rule_id].split("~")[0] for rule_id in endless))
        line, column = origins[endless[0]]
        raise GrammarError(
            f"{'rules' if len(shown) > 1 else 'rule'} {', '.join(repr(n) for n in shown[:5])} can never finish: "
            "every alternative recurses without end",
            line,
            column,
        )


def _rules_with_a_finished_alternative(
    references: _References, eligible: list[bool] | None, *, mark_empty: bool
) -> list[bool]:
    """Per rule, whether one of its eligible alternatives (all when `eligible` is None) has every rule it
    references marked too (the least fixpoint; a rule with no alternatives is marked when `mark_empty`). A
    worklist over the rules each alternative waits on, so a long chain of rules costs linear time, not a pass
    per link."""
    waiting_on: list[list[int]] = [[] for _ in range(references.n_rules)]
    missing = [len(refs) for refs in references.refs]
    marked = [False] * references.n_rules
    ready: list[int] = []
    owner = references.owner
    for alt_id, refs in enumerate(references.refs):
        if eligible is not None and not eligible[alt_id]:
            continue
        if not refs:
            ready.append(owner[alt_id])
        for ref in refs:
            waiting_on[ref].append(alt_id)
    if mark_empty:
        ready.extend(references.without_alternatives)
    while ready:
        rule_id = ready.pop()
        if marked[rule_id]:
            continue
        marked[rule_id] = True
        for alt_id in waiting_on[rule_id]:
            missing[alt_id] -= 1
            if missing[alt_id] == 0:
                ready.append(owner[alt_id])
    return marked


def _strongly_connected_components(successors: list[list[int]]) -> list[int]:
    """Component id per node (iterative Tarjan)."""
    count = len(successors)
    index = [-1] * count
    low = [0] * count
    component = [-1] * count
    on_stack = [False] * count
    stack: list[int] = []
    counter = 0
    for root in range(count):
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            if child < len(successors[node]):
                work.append((node, child + 1))
                target = successors[node][child]
                if index[target] < 0:
                    work.append((target, 0))
                elif on_stack[target]:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    component[member] = node
                    if member == node:
                        break
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return component


def _cycle(
    source: int, target: int, left_edges: list[list[tuple[int, bool]]], component: list[int]
) -> list[int]:
    """A path source -> target -> ... -> source inside one component, for the error message."""
    came_from = {target: target}
    frontier = [target]
    while source not in came_from:
        following = []
        for node in frontier:
            for successor, _ in left_edges[node]:
                if successor not in came_from and component[successor] == component[source]:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    path = [source]
    while path[-1] != target:
        path.append(came_from[path[-1]])
    return [source, *reversed(path)]


def _raise_left_recursion(cycle: list[int], names: list[str], origins: list[tuple[int, int]]) -> None:
    shown = [names[rule].split("~")[0] for rule in cycle]
    collapsed = [name for index, name in enumerate(shown) if index == 0 or shown[index - 1] != name]
    line, column = origins[cycle[0]]
    if len(collapsed) == 1:
        reason = (
            f"rule '{collapsed[0]}' is left-recursive (a repetition or reference can come back to it "
            "without consuming input)"
        )
    else:
        reason = f"left recursion: {' -> '.join(collapsed)} can repeat without consuming input"
    raise GrammarError(reason, line, column)
