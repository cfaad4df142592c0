"""Plain-Python token semantics, one token at a time with no caching: what every fast path is tested against."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge_runtime.grammar.stacks import StackMachine, StackSet
from edge_runtime.grammar.vocab import Vocabulary

if TYPE_CHECKING:
    from edge_runtime.grammar.matcher import GrammarMatcher


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


def reference_fill_mask(matcher: GrammarMatcher, out: np.ndarray) -> None:
    """The mask at the matcher's position, token by token from its stacks, ignoring every cache."""
    machine = matcher.grammar.automaton.machine
    stacks = matcher.stacks()
    for token_id in range(matcher.vocab.size):
        out[token_id] = bool(reference_next_stacks(machine, matcher.vocab, stacks, token_id))
