"""Plain-Python token semantics, one token at a time with no caching: what every fast path is tested against."""

from __future__ import annotations

import numpy as np

from edge_runtime.grammar.stacks import StackMachine, StackSet
from edge_runtime.grammar.vocab import Vocabulary


def reference_next_stacks(
    machine: StackMachine, vocab: Vocabulary, stacks: StackSet, token_id: int
) -> StackSet:
    """The stacks after `token_id`; empty when the token is not allowed."""
    if token_id in vocab.eog_ids:
        return frozenset({()}) if () in stacks else frozenset()
    by_element = machine.step_token_element(stacks, token_id)
    data = vocab.token_bytes[token_id]
    if token_id in vocab.control_ids or not data:
        return by_element
    return machine.step_bytes(stacks, data) | by_element


def reference_fill_mask(machine: StackMachine, vocab: Vocabulary, stacks: StackSet, out: np.ndarray) -> None:
    for token_id in range(vocab.size):
        out[token_id] = bool(reference_next_stacks(machine, vocab, stacks, token_id))
