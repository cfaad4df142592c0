"""Token masks of one grammar over one vocabulary, computed per automaton state and cached.

A mask depends only on the automaton state, so states met again (inside a JSON string, between array items)
cost a cache lookup. A new state costs one level-by-level pass over the vocabulary trie: every node's parse
state is its parent's state stepped by its byte, gathered from the automaton's transition table with numpy,
so shared prefixes are stepped once and only unseen (state, byte) pairs run the Python stack machine.

Boundary for the C port: `_node_states` needs only plain arrays (the trie's node_parent / node_byte /
level_offsets / child_offsets and the automaton's int32 table); a C loop can walk them and hand back the
(state, byte) pairs it found unknown, for `ByteAutomaton.fill_transitions` to resolve before it resumes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from edge_runtime.grammar.automaton import DEAD, ByteAutomaton
from edge_runtime.grammar.ir import ElementKind
from edge_runtime.grammar.vocab import Vocabulary

_TOKEN = int(ElementKind.TOKEN)


class TokenMasks:
    """Thread-safe; keeps the most recently used masks within `budget_bytes`, packed 8 tokens a byte (32 KiB
    each for 262k tokens: 256 masks in the default 8 MiB per grammar and vocabulary)."""

    def __init__(self, automaton: ByteAutomaton, vocab: Vocabulary, budget_bytes: int = 8 << 20) -> None:
        self.automaton = automaton
        self.vocab = vocab
        self.capacity = max(16, budget_bytes // max(1, (vocab.size + 7) // 8))
        self._packed: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        token_node = vocab.index.token_node
        self._n_nodes = len(vocab.index.node_parent)
        self._token_node_or_dead = np.where(token_node >= 0, token_node, self._n_nodes).astype(np.intp)
        """Node per token; tokens that never match text point at an extra, always dead, node."""

    def fill(self, state: int, out: np.ndarray) -> None:
        with self._lock:
            packed = self._packed.get(state)
            if packed is not None:
                self._packed.move_to_end(state)
        if packed is not None:
            out[:] = np.unpackbits(packed, count=self.vocab.size).view(np.bool_)
            return
        self.compute(state, out)
        packed = np.packbits(out)
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
