"""The per-request cursor over a compiled grammar and a vocabulary: advance, mask, forced bytes, rollback."""

from __future__ import annotations

from collections import deque

import numpy as np

from edge_runtime.grammar.automaton import DEAD
from edge_runtime.grammar.grammar import Grammar
from edge_runtime.grammar.stacks import StackSet
from edge_runtime.grammar.vocab import Vocabulary


class GrammarMatcher:
    """Built directly, `GrammarMatcher(grammar, vocab)`. Cheap to create (an integer state and a short history);
    not thread-safe, one per sequence. The expensive work (transitions, masks) lives in the shared grammar and
    is reused across requests."""

    def __init__(self, grammar: Grammar, vocab: Vocabulary, max_rollback: int = 64) -> None:
        if max_rollback < 0:
            raise ValueError(f"max_rollback must be >= 0, got {max_rollback}")
        grammar.check_tokens(vocab)
        self.grammar = grammar
        self.vocab = vocab
        self._automaton = grammar.automaton
        self._masks = grammar.token_masks(vocab)
        self._state = self._automaton.initial
        self._history: deque[int] = deque(maxlen=max_rollback)

    @property
    def state(self) -> int:
        """The automaton state: equal states have equal futures (masks, forced bytes, completion)."""
        return self._state

    def stacks(self) -> StackSet:
        """The set of pushdown stacks this state stands for (for the reference matcher and debugging)."""
        return self._automaton.stacks(self._state)

    def fork(self) -> GrammarMatcher:
        """An independent cursor at the same position, with an empty history."""
        twin = GrammarMatcher(self.grammar, self.vocab, max_rollback=self._history.maxlen or 0)
        twin._state = self._state
        return twin

    def next_state(self, token_id: int) -> int:
        """The state after `token_id` (DEAD if it is not allowed), without moving."""
        if not 0 <= token_id < self.vocab.size:
            raise ValueError(f"token id {token_id} is outside the vocabulary of {self.vocab.size} tokens")
        automaton = self._automaton
        state = self._state
        if token_id in self.vocab.eog_ids:
            return automaton.finished if automaton.is_complete(state) else DEAD
        by_element = automaton.after_token_element(state, token_id)
        data = self.vocab.token_bytes[token_id]
        if token_id in self.vocab.control_ids or not data:
            return by_element
        return automaton.union(automaton.walk(state, data), by_element)

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token and return True, or return False and change nothing."""
        return self._move(self.next_state(token_id))

    def accept_bytes(self, data: bytes) -> bool:
        """Advance by raw text bytes (all or nothing); counts as one step for rollback."""
        state = self._automaton.walk(self._state, bytes(data))
        return self._move(state)

    def _move(self, state: int) -> bool:
        if state == DEAD:
            return False
        self._history.append(self._state)
        self._state = state
        return True

    def rollback(self, n_tokens: int) -> None:
        """Undo the last `n_tokens` accepted steps (at most `max_rollback` are remembered)."""
        if not 0 <= n_tokens <= len(self._history):
            raise ValueError(f"cannot roll back {n_tokens} steps: {len(self._history)} are remembered")
        for _ in range(n_tokens):
            self._state = self._history.pop()

    def fill_mask(self, out: np.ndarray) -> None:
        """Set `out[id]` to whether accept_token(id) would succeed. `out` is a writable numpy bool array of
        shape (vocab.size,), owned by the caller and reused across steps."""
        if not isinstance(out, np.ndarray) or out.dtype != np.bool_ or out.shape != (self.vocab.size,):
            got = f"{type(out).__name__} {getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}".strip()
            raise ValueError(
                f"mask must be a numpy bool array of shape ({self.vocab.size},), got {got}; "
                f"allocate it with np.zeros({self.vocab.size}, dtype=bool)"
            )
        self._masks.fill(self._state, out)

    def forced_bytes(self) -> bytes:
        """The bytes every continuation must start with; empty when there is a choice (or the grammar may end)."""
        return self._automaton.forced_bytes(self._state)

    def is_complete(self) -> bool:
        """The text so far is a whole sentence of the grammar."""
        return self._automaton.is_complete(self._state)

    def allowed_eog(self) -> bool:
        """End-of-generation tokens are allowed now (exactly when the parse is complete)."""
        return self.is_complete()

    def is_finished(self) -> bool:
        """Complete, and nothing but end-of-generation can follow."""
        return self._automaton.is_finished(self._state)
