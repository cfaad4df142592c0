"""GrammarConstraint: the engine's view of a grammar, with jump-forward tokens that never break it."""

from __future__ import annotations

from functools import partial

import numpy as np
from grammar_support import greedy_encode, new_mask

from edge_runtime.engine.grammar_constraint import GrammarConstraint
from edge_runtime.engine.types import Constraint
from edge_runtime.grammar import GrammarMatcher, Vocabulary, compile_gbnf

KEYS = compile_gbnf('root ::= "{\\"name\\": \\"" [a-z]+ "\\", \\"ok\\": " ("true" | "false") "}"')


def test_forced_tokens_jump_over_fixed_keys(tiny_vocabulary: Vocabulary) -> None:
    encode = partial(greedy_encode, tiny_vocabulary)
    constraint: Constraint = GrammarConstraint(GrammarMatcher(KEYS, tiny_vocabulary), encode)
    forced = constraint.forced_tokens()
    assert forced == encode(b'{"name": "')
    for token in forced:
        assert constraint.accept_token(token)
    assert constraint.forced_tokens() == []
    for token in encode(b'bob", "ok": f'):
        assert constraint.accept_token(token)
    assert constraint.forced_tokens() == encode(b"alse}")


def test_forced_tokens_refuse_an_encoding_the_grammar_rejects(tiny_vocabulary: Vocabulary) -> None:
    bos = min(tiny_vocabulary.control_ids)

    def encode_with_bos(data: bytes) -> list[int]:
        return [bos, *greedy_encode(tiny_vocabulary, data)]

    constraint = GrammarConstraint(GrammarMatcher(KEYS, tiny_vocabulary), encode_with_bos)
    assert constraint.forced_tokens() == []
    assert constraint.matcher.state == constraint.matcher.grammar.automaton.initial


def test_mask_ends_with_only_end_of_generation(tiny_vocabulary: Vocabulary) -> None:
    constraint = GrammarConstraint(GrammarMatcher(KEYS, tiny_vocabulary), partial(greedy_encode, tiny_vocabulary))
    mask = new_mask(tiny_vocabulary)
    for token in greedy_encode(tiny_vocabulary, b'{"name": "x", "ok": true'):
        constraint.fill_mask(mask)
        assert mask[token] and not mask[sorted(tiny_vocabulary.eog_ids)].any()
        assert constraint.accept_token(token)
    assert not constraint.is_complete()
    assert constraint.accept_token(greedy_encode(tiny_vocabulary, b"}")[0])
    assert constraint.is_complete() and constraint.is_finished()
    constraint.fill_mask(mask)
    assert sorted(np.flatnonzero(mask).tolist()) == sorted(tiny_vocabulary.eog_ids)


def test_forced_tokens_stop_before_a_partial_character(synthetic_vocabulary: Vocabulary) -> None:
    grammar = compile_gbnf('root ::= "a€" [é-ë]')
    constraint = GrammarConstraint(
        GrammarMatcher(grammar, synthetic_vocabulary), partial(greedy_encode, synthetic_vocabulary)
    )
    assert constraint.matcher.forced_bytes() == "a€".encode() + b"\xc3"
    assert constraint.forced_tokens() == greedy_encode(synthetic_vocabulary, "a€".encode())
