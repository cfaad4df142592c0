"""Stack sets interned as integer states, with a lazily filled byte transition table shared by every matcher
of one grammar. A state is a deterministic summary of all parses so far, so per-state results (transitions,
masks, forced bytes) are computed once and reused across requests."""

from __future__ import annotations

import threading

import numpy as np

from edge_runtime.grammar.ir import FlatGrammar
from edge_runtime.grammar.stacks import StackMachine, StackSet

DEAD = 0
"""The state with no stacks: nothing can follow."""

_UNKNOWN = -1


class ByteAutomaton:
    """Thread-safe: interning, table growth and table writes happen under one lock (so no write lands in a
    table being replaced); lookups of known transitions do not lock.
    States are never forgotten, so memory grows with the distinct parse situations met (one 1 KiB table row
    each): nesting depth and positions inside bounded repetitions create states, repeated text does not."""

    def __init__(self, flat: FlatGrammar) -> None:
        self.machine = StackMachine(flat)
        self._lock = threading.Lock()
        self._sets: list[StackSet] = []
        self._ids: dict[StackSet, int] = {}
        self._complete: list[bool] = []
        self._token_tops: list[list[tuple[int, int]]] = []
        self._forced: dict[int, bytes] = {}
        self._table = np.full((64, 256), _UNKNOWN, dtype=np.int32)
        self.intern(frozenset())
        self.initial = self.intern(self.machine.initial)
        self.finished = self.intern(frozenset({()}))
        """The state after a complete parse with nothing more allowed."""

    @property
    def table(self) -> np.ndarray:
        """[n_states, 256] int32 next state per byte, -1 where not computed yet (see fill_transitions).
        Bytes that no stack top can take are DEAD from the moment the state is interned."""
        return self._table

    def intern(self, stacks: StackSet) -> int:
        found = self._ids.get(stacks)
        if found is not None:
            return found
        with self._lock:
            found = self._ids.get(stacks)
            if found is not None:
                return found
            state = len(self._sets)
            if state >= self._table.shape[0]:
                grown = np.full((self._table.shape[0] * 2, 256), _UNKNOWN, dtype=np.int32)
                grown[:state] = self._table[:state]
                self._table = grown
            allowed = self.machine.allowed_bytes(stacks).to_bytes(32, "little")
            takes = np.unpackbits(np.frombuffer(allowed, dtype=np.uint8), bitorder="little").astype(bool)
            self._table[state] = np.where(takes, _UNKNOWN, DEAD)
            self._sets.append(stacks)
            self._complete.append(() in stacks)
            self._token_tops.append(self.machine.token_element_tops(stacks))
            self._ids[stacks] = state
            return state

    def stacks(self, state: int) -> StackSet:
        return self._sets[state]

    def is_complete(self, state: int) -> bool:
        return self._complete[state]

    def token_element_tops(self, state: int) -> list[tuple[int, int]]:
        return self._token_tops[state]

    def is_finished(self, state: int) -> bool:
        """Complete, and no stack can take anything more."""
        return self._sets[state] == frozenset({()})

    def forced_bytes(self, state: int, limit: int = 256) -> bytes:
        """The longest byte string (up to `limit`) that every continuation from `state` starts with."""
        found = self._forced.get(state)
        if found is not None:
            return found
        forced = bytearray()
        current = state
        while len(forced) < limit and current != DEAD and not self._complete[current]:
            if self._token_tops[current]:
                break
            allowed = self.machine.allowed_bytes(self._sets[current])
            if allowed == 0 or allowed & (allowed - 1):
                break
            byte = allowed.bit_length() - 1
            forced.append(byte)
            current = self.next_state(current, byte)
        self._forced[state] = bytes(forced)
        return self._forced[state]

    def next_state(self, state: int, byte: int) -> int:
        found = int(self._table[state, byte])
        if found == _UNKNOWN:
            found = self.intern(self.machine.step_byte(self._sets[state], byte))
            with self._lock:
                self._table[state, byte] = found
        return found

    def walk(self, state: int, data: bytes) -> int:
        for byte in data:
            if state == DEAD:
                break
            state = self.next_state(state, byte)
        return state

    def after_token_element(self, state: int, token_id: int) -> int:
        """The state after one whole token matched by TOKEN / TOKEN_NOT elements (DEAD if none takes it)."""
        if not self._token_tops[state]:
            return DEAD
        return self.intern(self.machine.step_token_element(self._sets[state], token_id))

    def union(self, first: int, second: int) -> int:
        if first == DEAD or first == second:
            return second
        if second == DEAD:
            return first
        return self.intern(self._sets[first] | self._sets[second])

    def fill_transitions(self, states: np.ndarray, next_bytes: np.ndarray) -> None:
        """Compute every unknown transition among the given (state, byte) pairs. Bytes that each top class of
        a state's stacks treats alike lead to the same state, so one stack-machine step serves a whole group."""
        by_state: dict[int, list[int]] = {}
        for key in np.unique(states.astype(np.int64) * 256 + next_bytes).tolist():
            by_state.setdefault(key >> 8, []).append(key & 0xFF)
        for state, byte_values in by_state.items():
            classes = self.machine.top_classes(self._sets[state])
            groups: dict[bytes, list[int]] = {}
            for byte in byte_values:
                groups.setdefault(bytes(row[byte] for row in classes), []).append(byte)
            for first, *rest in groups.values():
                found = self.next_state(state, first)
                if rest:
                    with self._lock:
                        self._table[state, rest] = found
