"""Token masks of one grammar over one vocabulary, computed per automaton state and cached.

A mask depends only on the automaton state, so states met again (inside a JSON string, between array items)
cost a cache lookup. A new state costs one walk of the vocabulary trie: every node's parse state is its
parent's stepped by its byte through the automaton's transition table, so shared prefixes are stepped once and
only unseen (state, byte) pairs run the Python stack machine.

Two walks give the same masks: the native one (`edge_runtime._native.trie_walk`, depth first over the trie in
preorder, skipping dead subtrees) and the numpy level pass it is tested against.

The native side also splits a wide state (one taking most bytes, as inside a JSON string) by the tops of
its stacks (XGrammar's adaptive token masks, in automaton terms): the state of its stacks without the bottom
part they all share, walked once and shared by every state with the same tops (each string-valued property
of a schema, say), accepts tokens that every such state accepts; the shared bottom matters only under the trie
nodes where the tops' frames can end, so only the paths to those are walked per state.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from weakref import WeakKeyDictionary

import numpy as np

from edge_runtime import _native
from edge_runtime.grammar.automaton import DEAD, ByteAutomaton
from edge_runtime.grammar.ir import ElementKind
from edge_runtime.grammar.vocab import Vocabulary

_TOKEN = int(ElementKind.TOKEN)


@dataclass(frozen=True, eq=False)
class PreorderTrie:
    """The vocabulary trie numbered depth first (node 0 is the empty prefix), the layout of the native walk:
    node n's subtree is nodes n .. subtree_end[n] - 1, and the tokens spelled by node n are
    sorted_ids[token_start[n] : token_start[n + 1]] (tokens in byte order end at nodes in preorder)."""

    node_byte: np.ndarray
    node_depth: np.ndarray
    subtree_end: np.ndarray
    token_start: np.ndarray
    sorted_ids: np.ndarray
    node_parent: np.ndarray
    max_depth: int

    @property
    def n_nodes(self) -> int:
        return len(self.node_byte)


_preorder_tries: WeakKeyDictionary[Vocabulary, PreorderTrie] = WeakKeyDictionary()
_preorder_lock = threading.Lock()


def preorder_trie(vocab: Vocabulary) -> PreorderTrie:
    """The preorder layout of `vocab`'s trie, built once per vocabulary (about 0.1 s for 262k tokens)."""
    with _preorder_lock:
        found = _preorder_tries.get(vocab)
        if found is None:
            found = _preorder_tries[vocab] = _build_preorder(vocab)
        return found


def _build_preorder(vocab: Vocabulary) -> PreorderTrie:
    """Token k (in byte order) creates the nodes of depths lcp[k] + 1 .. len(k); listing them token by token,
    shallow first, is exactly preorder. Subtree sizes come bottom-up through the level layout's parents."""
    index = vocab.index
    sorted_ids = index.sorted_ids.astype(np.int32)
    lcp = index.lcp.astype(np.int64)
    spelled = [vocab.token_bytes[token] for token in sorted_ids.tolist()]
    lengths = np.fromiter(map(len, spelled), dtype=np.int64, count=len(spelled))
    created = lengths - lcp
    n_nodes = 1 + int(created.sum())
    first_new = np.cumsum(created) - created
    owner = np.repeat(np.arange(len(spelled)), created)
    depth = np.arange(n_nodes - 1) - np.repeat(first_new, created) + np.repeat(lcp, created) + 1
    data = np.frombuffer(b"".join(spelled), dtype=np.uint8)
    token_offsets = np.cumsum(lengths) - lengths
    node_byte = np.zeros(n_nodes, dtype=np.uint8)
    node_byte[1:] = data[token_offsets[owner] + depth - 1]
    node_depth = np.zeros(n_nodes, dtype=np.int32)
    node_depth[1:] = depth

    end_node = np.maximum.accumulate(np.where(created > 0, first_new + created, 0))
    token_start = np.searchsorted(end_node, np.arange(n_nodes + 1), side="left").astype(np.int32)

    by_level = np.argsort(node_depth, kind="stable")
    parent = np.zeros(n_nodes, dtype=np.int64)
    parent[by_level] = by_level[np.maximum(index.node_parent.astype(np.int64), 0)]
    sizes = np.ones(n_nodes, dtype=np.int64)
    level_starts = np.searchsorted(node_depth[by_level], np.arange(int(depth.max(initial=0)) + 2))
    for level in range(len(level_starts) - 2, 0, -1):
        members = by_level[level_starts[level] : level_starts[level + 1]]
        np.add.at(sizes, parent[members], sizes[members])
    subtree_end = (np.arange(n_nodes) + sizes).astype(np.int32)
    return PreorderTrie(
        node_byte=node_byte,
        node_depth=node_depth,
        subtree_end=subtree_end,
        token_start=token_start,
        sorted_ids=sorted_ids,
        node_parent=parent.astype(np.int32),
        max_depth=max(1, int(depth.max(initial=0))),
    )


@dataclass(frozen=True, eq=False)
class _TopsWalk:
    """What a state's stack tops (its stacks without their common bottom) decide alone. `accepted` (packed): text tokens accepted by every state with
    these tops. `visit`: the sorted trie nodes where the stacks below can matter (the paths to, and subtrees
    under, nodes where a top's frame can end); None when that is too much of the trie to be worth it."""

    accepted: np.ndarray
    visit: np.ndarray | None


class TokenMasks:
    """Thread-safe; keeps the most recently used masks within `budget_bytes`, packed 8 tokens a byte (32 KiB
    each for 262k tokens: 256 masks in the default 8 MiB per grammar and vocabulary). `native=False` computes
    masks with the numpy level pass instead of the C walk (the reference the C walk is tested against).
    `adaptive_share`: split a state by its stack tops only when the nodes left to walk per state are at most
    this share of the trie; `wide_bytes`: only states taking at least this many distinct bytes are split."""

    def __init__(
        self, automaton: ByteAutomaton, vocab: Vocabulary, budget_bytes: int = 8 << 20, *, native: bool = True,
        adaptive_share: float = 0.125, wide_bytes: int = 64,
    ) -> None:
        if not 0.0 <= adaptive_share <= 1.0:
            raise ValueError(f"adaptive_share must be between 0 and 1, got {adaptive_share}")
        self.automaton = automaton
        self.vocab = vocab
        self.native = native
        self.adaptive_share = adaptive_share
        self.wide_bytes = wide_bytes
        self._tops_walks: OrderedDict[int, _TopsWalk] = OrderedDict()
        self._split_of: dict[int, _TopsWalk | None] = {}
        self._n_packed = (vocab.size + 7) // 8
        self.capacity = max(16, budget_bytes // max(1, self._n_packed))
        self._packed: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._scratch = threading.local()
        if native:
            self._trie = preorder_trie(vocab)
        token_node = vocab.index.token_node
        self._n_nodes = len(vocab.index.node_parent)
        self._token_node_or_dead = np.where(token_node >= 0, token_node, self._n_nodes).astype(np.intp)
        """Node per token; tokens that never match text point at an extra, always dead, node."""

    def is_cached(self, state: int) -> bool:
        """Whether fill(state) is a cache hit now (benchmarks tell cold masks from warm ones by it)."""
        with self._lock:
            return state in self._packed

    def fill(self, state: int, out: np.ndarray) -> None:
        with self._lock:
            packed = self._packed.get(state)
            if packed is not None:
                self._packed.move_to_end(state)
        if packed is not None:
            _native.unpack_mask(packed, out)
            return
        self.compute(state, out)
        packed = np.empty(self._n_packed, dtype=np.uint8)
        _native.pack_mask(out, packed)
        with self._lock:
            self._packed[state] = packed
            while len(self._packed) > self.capacity:
                self._packed.popitem(last=False)

    def compute(self, state: int, out: np.ndarray) -> None:
        """The mask of `state`, uncached: text tokens through the trie, whole-token grammar elements, and
        end-of-generation when the parse is complete."""
        automaton = self.automaton
        if state == DEAD:
            out[:] = False
        elif self.native:
            self._text_tokens(state, out)
        else:
            np.not_equal(self._node_states(state)[self._token_node_or_dead], DEAD, out=out)
        size = self.vocab.size
        excluded: list[int] = []
        for kind, token_id in automaton.token_element_tops(state):
            if not 0 <= token_id < size:
                if kind != _TOKEN:
                    out[:] = True
                continue
            if kind == _TOKEN:
                out[token_id] = True
            else:
                excluded.append(token_id)
        if excluded:
            by_text = out[excluded].copy()
            out[:] = True
            out[excluded] = by_text
            for token_id in excluded:
                if not out[token_id]:
                    out[token_id] = automaton.after_token_element(state, token_id) != DEAD
        out[self.vocab.eog_array] = automaton.is_complete(state)

    def _text_tokens(self, state: int, out: np.ndarray) -> None:
        """Sets `out` to the text tokens alive from `state`: the shared answer of its stack tops, plus a walk
        of the nodes where the stacks below matter; or one whole walk when splitting does not pay."""
        tops_walk = self._split(state)
        if tops_walk is None or tops_walk.visit is None:
            out[:] = False
            self._walk(state, out)
        else:
            _native.unpack_mask(tops_walk.accepted, out)
            self._walk(state, out, visit=tops_walk.visit)

    def _split(self, state: int) -> _TopsWalk | None:
        """The shared walk of `state`'s stack tops, when the state is wide, its stacks share a bottom, and the
        nodes left to walk per state are few; else None."""
        if state in self._split_of:
            return self._split_of[state]
        found = None
        stacks = [stack for stack in self.automaton.stacks(state) if stack]
        if stacks and np.count_nonzero(self.automaton.table[state]) >= self.wide_bytes:
            first, keep = stacks[0], min(map(len, stacks)) - 1
            common = 0
            while common < keep and all(stack[common] == first[common] for stack in stacks):
                common += 1
            if common:
                tops_walk = self._tops_walk(self.automaton.intern(frozenset(s[common:] for s in stacks)))
                found = tops_walk if tops_walk.visit is not None else None
        self._split_of[state] = found
        return found

    def _tops_walk(self, tops: int) -> _TopsWalk:
        with self._lock:
            found = self._tops_walks.get(tops)
            if found is not None:
                self._tops_walks.move_to_end(tops)
                return found
        trie = self._trie
        node_states = np.zeros(trie.n_nodes, dtype=np.int32)
        alive = np.zeros(self.vocab.size, dtype=bool)
        self._walk(tops, alive, node_states=node_states)
        accepted = np.empty(self._n_packed, dtype=np.uint8)
        _native.pack_mask(alive, accepted)
        n_states = int(node_states.max()) + 1
        complete = np.fromiter(map(self.automaton.is_complete, range(n_states)), dtype=bool, count=n_states)
        exits = np.flatnonzero(complete[node_states])
        limit = self.adaptive_share * trie.n_nodes
        visit = self._nodes_around(exits) if len(exits) <= limit else None
        if visit is not None and len(visit) > limit:
            visit = None
        found = _TopsWalk(accepted, visit)
        with self._lock:
            self._tops_walks[tops] = found
            while len(self._tops_walks) > self.capacity:
                self._tops_walks.popitem(last=False)
        return found

    def _nodes_around(self, exits: np.ndarray) -> np.ndarray:
        """Sorted nodes on the paths to `exits` and in their subtrees (the root excluded)."""
        trie = self._trie
        change = np.zeros(trie.n_nodes + 1, dtype=np.int32)
        np.add.at(change, exits, 1)
        np.add.at(change, trie.subtree_end[exits], -1)
        chosen = np.cumsum(change[:-1]) > 0
        ancestors = trie.node_parent[exits]
        while len(ancestors):
            ancestors = ancestors[~chosen[ancestors]]
            chosen[ancestors] = True
            ancestors = trie.node_parent[ancestors[ancestors > 0]]
        chosen[0] = False
        return np.flatnonzero(chosen).astype(np.int32)

    def _walk(
        self, state: int, out: np.ndarray, *, visit: np.ndarray | None = None,
        node_states: np.ndarray | None = None,
    ) -> None:
        """Sets in `out` the text tokens alive from `state` by the C walk (others are left as they are), over
        the `visit` nodes only when given. Each round walks the subtrees the previous one stopped at (unknown
        transitions), after the automaton has computed them."""
        trie = self._trie
        pending = getattr(self._scratch, "pending", None)
        if pending is None:
            pending = self._scratch.pending = np.empty((trie.n_nodes, 2), dtype=np.int32)
        entries = np.array([[0, state]], dtype=np.int32)
        while True:
            n_pending = _native.trie_walk(
                self.automaton.table, trie.node_byte, trie.node_depth, trie.subtree_end, trie.token_start,
                trie.sorted_ids, trie.max_depth, entries, out, pending, visit, node_states,
            )
            if n_pending == 0:
                return
            entries = pending[:n_pending].copy()
            self.automaton.fill_transitions(entries[:, 1], trie.node_byte[entries[:, 0]])

    def _node_states(self, state: int) -> np.ndarray:
        """Parse state of every trie node reachable from `state` (DEAD elsewhere), level by level: a dense
        level is stepped as one slice (dead parents stay dead through row 0 of the table); a sparse one only
        expands the children of its live nodes."""
        index = self.vocab.index
        offsets = index.level_offsets.tolist()
        node_states = np.zeros(self._n_nodes + 1, dtype=np.int32)
        node_states[0] = state
        previous_low, previous_high, n_alive = 0, 1, 1
        for depth in range(1, index.n_levels):
            low, high = offsets[depth], offsets[depth + 1]
            children: slice | np.ndarray
            if n_alive * 4 >= previous_high - previous_low:
                children = slice(low, high)
                parent_states = node_states[index.node_parent[low:high]]
            else:
                alive = previous_low + np.flatnonzero(node_states[previous_low:previous_high])
                starts = index.child_offsets[alive]
                counts = index.child_offsets[alive + 1] - starts
                total = int(counts.sum())
                if total == 0:
                    break
                run_starts = np.cumsum(counts) - counts
                children = np.repeat(starts - run_starts, counts) + np.arange(total)
                parent_states = np.repeat(node_states[alive], counts)
            next_bytes = index.node_byte[children]
            found = self.automaton.table[parent_states, next_bytes]
            unknown = found < 0
            if unknown.any():
                self.automaton.fill_transitions(parent_states[unknown], next_bytes[unknown])
                found = self.automaton.table[parent_states, next_bytes]
            node_states[children] = found
            n_alive = int(np.count_nonzero(found))
            if n_alive == 0:
                break
            previous_low, previous_high = low, high
        return node_states
