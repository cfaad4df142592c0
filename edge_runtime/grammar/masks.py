"""Token masks of one grammar over one vocabulary, computed per automaton state and cached.

A mask depends only on the automaton state, so states met again (inside a JSON string, between array items)
cost a cache lookup. A new state costs one walk of the vocabulary trie: every node's parse state is its
parent's stepped by its byte through the automaton's transition table, so shared prefixes are stepped once and
only unseen (state, byte) pairs run the Python stack machine.

Two walks give the same masks: the native one (`edge_runtime._native.trie_walk`, depth first over the trie in
preorder, skipping dead subtrees) and the numpy level pass it is tested against.

The native side also splits a wide state (one taking most bytes, as inside a JSON string) by the tops of
its stacks (XGrammar's adaptive token masks, in automaton terms). Its stacks share a bottom; the tops are what
lies above it (a stack that is the bottom alone is a tops that has already ended). The tops alone, walked once,
accept tokens that any state with these tops accepts, and mark the trie nodes where they can end. The bottom
matters only below such a node, through a child whose byte the bottom takes; only the paths to those children
and their subtrees are walked per state. A tops walk depends on the tops' sub-grammar alone, so it is keyed by
StackKeys and shared by every grammar over the vocabulary: each string-valued property of a schema, and every
schema's strings after the first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from weakref import WeakKeyDictionary

import numpy as np

from edge_runtime import _native
from edge_runtime.grammar.automaton import DEAD, ByteAutomaton
from edge_runtime.grammar.ir import ElementKind
from edge_runtime.grammar.stack_keys import StackKeys
from edge_runtime.grammar.stacks import StackSet
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
    byte_order: np.ndarray
    """Nodes sorted by their byte: the nodes spelling byte b are byte_order[byte_offsets[b] : byte_offsets[b + 1]]."""
    byte_offsets: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.node_byte)


_preorder_tries: WeakKeyDictionary[Vocabulary, PreorderTrie] = WeakKeyDictionary()
_vocabulary_lock = threading.Lock()


_Built = TypeVar("_Built")


def _per_vocabulary(
    cache: WeakKeyDictionary[Vocabulary, _Built], vocab: Vocabulary, build: Callable[[], _Built]
) -> _Built:
    """`cache[vocab]`, built on first use under one lock (it lives as long as the vocabulary)."""
    with _vocabulary_lock:
        found = cache.get(vocab)
        if found is None:
            found = cache[vocab] = build()
        return found


def preorder_trie(vocab: Vocabulary) -> PreorderTrie:
    """The preorder layout of `vocab`'s trie, built once per vocabulary (about 0.1 s for 262k tokens)."""
    return _per_vocabulary(_preorder_tries, vocab, lambda: _build_preorder(vocab))


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
    byte_order = np.argsort(node_byte[1:], kind="stable").astype(np.int32) + 1
    byte_offsets = np.searchsorted(node_byte[byte_order], np.arange(257)).astype(np.int64)
    return PreorderTrie(
        node_byte=node_byte,
        node_depth=node_depth,
        subtree_end=subtree_end,
        token_start=token_start,
        sorted_ids=sorted_ids,
        node_parent=parent.astype(np.int32),
        max_depth=max(1, int(depth.max(initial=0))),
        byte_order=byte_order,
        byte_offsets=byte_offsets,
    )


@dataclass(frozen=True, eq=False)
class _TopsWalk:
    """What a set of stack tops decides alone, over one vocabulary. `accepted` (packed over tokens): the text
    tokens alive from the tops, so alive from any state made of these tops over any bottom. `exits` (packed over
    trie nodes): where the tops can all have ended, handing the parse to the bottom below them."""

    accepted: np.ndarray
    exits: np.ndarray


@dataclass(frozen=True, eq=False)
class _Split:
    """A state cut into its tops' shared walk and the sorted trie nodes where its bottom can matter: the
    children of exits whose byte the bottom takes, the paths to them and their subtrees."""

    tops: _TopsWalk
    visit: np.ndarray


class _SharedTopsWalks:
    """Tops walks of one vocabulary keyed by StackKeys, so grammars with the same sub-grammar on top (every
    JSON string body, say) share one walk. Least recently used first out; thread-safe."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._walks: OrderedDict[bytes, _TopsWalk] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> _TopsWalk | None:
        with self._lock:
            found = self._walks.get(key)
            if found is not None:
                self._walks.move_to_end(key)
            return found

    def clear(self) -> None:
        with self._lock:
            self._walks.clear()

    def put(self, key: bytes, walk: _TopsWalk) -> None:
        with self._lock:
            self._walks[key] = walk
            while len(self._walks) > self.capacity:
                self._walks.popitem(last=False)


_scratch = threading.local()
"""Per thread, the walk's buffer of pending (node, state) pairs: one row per trie node of the largest trie
walked, shared by every grammar's masks."""

_shared_tops_walks: WeakKeyDictionary[Vocabulary, _SharedTopsWalks] = WeakKeyDictionary()
SHARED_TOPS_WALKS = 64
"""Tops walks kept per vocabulary: about 100 KiB each for Gemma's 262,144 tokens."""


def shared_tops_walks(vocab: Vocabulary) -> _SharedTopsWalks:
    return _per_vocabulary(_shared_tops_walks, vocab, lambda: _SharedTopsWalks(SHARED_TOPS_WALKS))


class TokenMasks:
    """Thread-safe; keeps the most recently used masks within `budget_bytes`, packed 8 tokens a byte (32 KiB
    each for 262k tokens: 256 masks in the default 8 MiB per grammar and vocabulary), and the states' splits
    within as many bytes again. `native=False` computes masks with the numpy level pass instead of the C walk
    (the reference the C walk is tested against).
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
        self._splits: OrderedDict[int, _Split | None] = OrderedDict()
        self._split_bytes = 0
        """Bytes held by the visit lists in _splits, kept within budget_bytes as well."""
        self.budget_bytes = budget_bytes
        self._stack_keys: StackKeys | None = None
        self._n_packed = (vocab.size + 7) // 8
        self.capacity = max(16, budget_bytes // max(1, self._n_packed))
        self._packed: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        if native:
            self._trie = preorder_trie(vocab)
            self._shared = shared_tops_walks(vocab)
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
        of the nodes where its bottom matters; or one whole walk when splitting does not pay."""
        split = self._split(state)
        if split is None:
            out[:] = False
            self._walk(state, out)
        else:
            _native.unpack_mask(split.tops.accepted, out)
            self._walk(state, out, visit=split.visit)

    def _split(self, state: int) -> _Split | None:
        """`state` cut into tops over one shared bottom (a stack equal to the bottom is a tops that has ended
        at once), when the state is wide and the nodes left to walk per state are few; else None."""
        with self._lock:
            if state in self._splits:
                self._splits.move_to_end(state)
                return self._splits[state]
        found = self._cut(state)
        with self._lock:
            replaced = self._splits.pop(state, None)
            self._split_bytes -= replaced.visit.nbytes if replaced is not None else 0
            self._splits[state] = found
            self._split_bytes += found.visit.nbytes if found is not None else 0
            while len(self._splits) > self.capacity or self._split_bytes > self.budget_bytes:
                _, evicted = self._splits.popitem(last=False)
                self._split_bytes -= evicted.visit.nbytes if evicted is not None else 0
        return found

    def _cut(self, state: int) -> _Split | None:
        automaton = self.automaton
        stacks = list(automaton.stacks(state))
        if not stacks or not all(stacks) or np.count_nonzero(automaton.table[state]) < self.wide_bytes:
            return None
        first, shortest = stacks[0], min(map(len, stacks))
        common = 0
        while common < shortest and all(stack[common] == first[common] for stack in stacks):
            common += 1
        tops = frozenset(stack[common:] for stack in stacks if len(stack) > common)
        if common == 0 or not tops:
            return None
        bottom = first[:common]
        takes = automaton.machine.allowed_bytes(automaton.machine.closure([bottom]))
        trie = self._trie
        bytes_taken = [byte for byte in range(256) if takes >> byte & 1]
        candidates = np.concatenate(
            [trie.byte_order[trie.byte_offsets[byte] : trie.byte_offsets[byte + 1]] for byte in bytes_taken]
            or [np.empty(0, dtype=np.int32)]
        )
        limit = self.adaptive_share * trie.n_nodes
        if len(candidates) > limit:
            return None
        tops_walk = self._tops_walk(tops)
        parents = trie.node_parent[candidates]
        after_exit = (tops_walk.exits[parents >> 3] >> (parents & 7)) & 1 > 0
        if len(tops) < len(stacks):
            after_exit |= parents == 0
        visit = self._nodes_around(candidates[after_exit])
        return _Split(tops_walk, visit) if len(visit) <= limit else None

    def _tops_walk(self, tops: StackSet) -> _TopsWalk:
        if self._stack_keys is None:
            self._stack_keys = StackKeys(self.automaton.machine)
        key = self._stack_keys.key(tops)
        found = self._shared.get(key)
        if found is not None:
            return found
        trie = self._trie
        node_states = np.zeros(trie.n_nodes, dtype=np.int32)
        alive = np.zeros(self.vocab.size, dtype=bool)
        self._walk(self.automaton.intern(tops), alive, node_states=node_states)
        accepted = np.empty(self._n_packed, dtype=np.uint8)
        _native.pack_mask(alive, accepted)
        n_states = int(node_states.max()) + 1
        complete = np.fromiter(map(self.automaton.is_complete, range(n_states)), dtype=bool, count=n_states)
        exits = np.packbits(complete[node_states], bitorder="little")
        found = _TopsWalk(accepted, exits)
        self._shared.put(key, found)
        return found

    def _nodes_around(self, nodes: np.ndarray) -> np.ndarray:
        """Sorted nodes on the paths to `nodes` and in their subtrees (the root excluded), in time proportional
        to the answer: a subtree is a contiguous range in preorder."""
        trie = self._trie
        starts = np.sort(nodes)
        ends = trie.subtree_end[starts]
        outermost = np.ones(len(starts), dtype=bool)
        outermost[1:] = starts[1:] >= np.maximum.accumulate(ends)[:-1]
        starts, ends = starts[outermost], ends[outermost]
        lengths = (ends - starts).astype(np.int64)
        inside = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
        paths = [inside.astype(np.int32)]
        ancestors = np.unique(trie.node_parent[starts])
        while len(ancestors) and ancestors[0] == 0:
            ancestors = ancestors[1:]
        while len(ancestors):
            paths.append(ancestors)
            ancestors = np.unique(trie.node_parent[ancestors])
            ancestors = ancestors[ancestors > 0]
        return np.unique(np.concatenate(paths)).astype(np.int32)

    def _walk(
        self, state: int, out: np.ndarray, *, visit: np.ndarray | None = None,
        node_states: np.ndarray | None = None,
    ) -> None:
        """Sets in `out` the text tokens alive from `state` by the C walk (others are left as they are), over
        the `visit` nodes only when given. Each round walks the subtrees the previous one stopped at (unknown
        transitions), after the automaton has computed them."""
        trie = self._trie
        pending = getattr(_scratch, "pending", None)
        if pending is None or len(pending) < trie.n_nodes:
            pending = _scratch.pending = np.empty((trie.n_nodes, 2), dtype=np.int32)
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
