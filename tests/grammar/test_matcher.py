"""Token-level behaviour of GrammarMatcher: masks against the reference, rollback, end of generation, forced
bytes, on the tiny model's vocabulary and a synthetic one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from grammar_cases import GBNF_DIR
from grammar_support import SYNTHETIC_CONTROL_BASE, SYNTHETIC_EOG, greedy_encode, new_mask
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.grammar import GrammarError, GrammarMatcher, Vocabulary, compile_gbnf
from edge_runtime.grammar.reference import reference_fill_mask

JSON_GRAMMAR = compile_gbnf((GBNF_DIR / "json.gbnf").read_text(encoding="utf-8"))
WALK_GRAMMARS = {
    "json": JSON_GRAMMAR,
    "arithmetic": compile_gbnf((GBNF_DIR / "arithmetic.gbnf").read_text(encoding="utf-8")),
    "utf8": compile_gbnf('root ::= "«" [^"\\\\é]{0,6} ("é" | [α-ω]+) "»"'),
    "keys": compile_gbnf('root ::= "{\\"name\\": \\"" [a-z]{1,8} "\\", \\"ok\\": " ("true" | "false") "}"'),
}


def reference_mask(matcher: GrammarMatcher) -> np.ndarray:
    out = new_mask(matcher.vocab)
    reference_fill_mask(matcher, out)
    return out


def random_walk(matcher: GrammarMatcher, choices: list[int]) -> None:
    """Take masked tokens chosen by `choices`; every step checks the fast mask against the reference."""
    mask = new_mask(matcher.vocab)
    for choice in choices:
        matcher.fill_mask(mask)
        np.testing.assert_array_equal(mask, reference_mask(matcher))
        allowed = np.flatnonzero(mask)
        if len(allowed) == 0:
            break
        token = int(allowed[choice % len(allowed)])
        assert matcher.accept_token(token)
        if token in matcher.vocab.eog_ids:
            assert matcher.is_finished()
            break


@pytest.mark.parametrize("name", sorted(WALK_GRAMMARS))
@settings(max_examples=15, deadline=None)
@given(choices=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=25))
def test_random_walk_on_tiny_vocabulary(name: str, choices: list[int], tiny_vocabulary: Vocabulary) -> None:
    random_walk(GrammarMatcher(WALK_GRAMMARS[name], tiny_vocabulary), choices)


@settings(max_examples=15, deadline=None)
@given(choices=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=25))
def test_random_walk_with_token_elements(choices: list[int], synthetic_vocabulary: Vocabulary) -> None:
    start, end, other = (SYNTHETIC_CONTROL_BASE + n for n in (10, 11, 12))
    grammar = compile_gbnf(f'root ::= <[{start}]> ("a" | !<[{end}]>)* <[{end}]> "x"? | <[{other}]>')
    random_walk(GrammarMatcher(grammar, synthetic_vocabulary), choices)


def test_every_taken_token_was_in_the_mask(tiny_vocabulary: Vocabulary) -> None:
    matcher = GrammarMatcher(JSON_GRAMMAR, tiny_vocabulary)
    mask = new_mask(tiny_vocabulary)
    for token in greedy_encode(tiny_vocabulary, b'{"name": "x", "n": [1, 2.5]}'):
        matcher.fill_mask(mask)
        assert mask[token]
        assert matcher.accept_token(token)
    assert matcher.is_complete()


def test_rejected_token_leaves_state_unchanged(tiny_vocabulary: Vocabulary) -> None:
    matcher = GrammarMatcher(JSON_GRAMMAR, tiny_vocabulary)
    assert matcher.accept_bytes(b'{"a"')
    before = matcher.state
    closing = greedy_encode(tiny_vocabulary, b"}")[0]
    assert not matcher.accept_token(closing)
    assert matcher.state == before
    assert not matcher.accept_bytes(b": }")
    assert matcher.state == before


def test_rollback_restores_masks(tiny_vocabulary: Vocabulary) -> None:
    matcher = GrammarMatcher(JSON_GRAMMAR, tiny_vocabulary, max_rollback=8)
    tokens = greedy_encode(tiny_vocabulary, b'{"key": [true, null]}')
    masks = []
    mask = new_mask(tiny_vocabulary)
    for token in tokens:
        matcher.fill_mask(mask)
        masks.append(mask.copy())
        assert matcher.accept_token(token)
    for steps_back in range(1, min(len(tokens), 8) + 1):
        matcher.rollback(1)
        matcher.fill_mask(mask)
        np.testing.assert_array_equal(mask, masks[-steps_back])
    with pytest.raises(ValueError, match="roll back"):
        matcher.rollback(1)


def test_eog_only_when_complete_and_alone_when_finished(synthetic_vocabulary: Vocabulary) -> None:
    grammar = compile_gbnf('root ::= "ab" "c"?')
    matcher = GrammarMatcher(grammar, synthetic_vocabulary)
    mask = new_mask(synthetic_vocabulary)
    matcher.fill_mask(mask)
    assert not mask[SYNTHETIC_EOG] and not matcher.allowed_eog()
    assert not matcher.accept_token(SYNTHETIC_EOG)
    assert matcher.accept_token(ord("a")) and matcher.accept_token(ord("b"))
    matcher.fill_mask(mask)
    assert mask[SYNTHETIC_EOG] and mask[ord("c")] and matcher.is_complete()
    assert matcher.accept_token(ord("c"))
    matcher.fill_mask(mask)
    assert np.flatnonzero(mask).tolist() == [SYNTHETIC_EOG]
    assert matcher.accept_token(SYNTHETIC_EOG) and matcher.is_finished()


def test_control_tokens_never_match_text(synthetic_vocabulary: Vocabulary) -> None:
    matcher = GrammarMatcher(compile_gbnf("root ::= [^x]*"), synthetic_vocabulary)
    mask = new_mask(synthetic_vocabulary)
    matcher.fill_mask(mask)
    assert not mask[SYNTHETIC_CONTROL_BASE:SYNTHETIC_EOG].any()
    assert mask[SYNTHETIC_EOG]


def test_forced_bytes_follow_fixed_keys(tiny_vocabulary: Vocabulary) -> None:
    grammar = WALK_GRAMMARS["keys"]
    matcher = GrammarMatcher(grammar, tiny_vocabulary)
    assert matcher.forced_bytes() == b'{"name": "'
    assert matcher.accept_bytes(b'{"name": "abc')
    assert matcher.forced_bytes() == b""
    assert matcher.accept_bytes(b'"')
    assert matcher.forced_bytes() == b', "ok": '
    assert matcher.accept_bytes(b', "ok": t')
    assert matcher.forced_bytes() == b"rue}"
    assert matcher.accept_bytes(b"rue}")
    assert matcher.forced_bytes() == b""
    assert matcher.is_finished()


def test_partial_utf8_tokens_follow_the_grammar(synthetic_vocabulary: Vocabulary) -> None:
    grammar = compile_gbnf('root ::= [é€]+ "a"')
    matcher = GrammarMatcher(grammar, synthetic_vocabulary)
    mask = new_mask(synthetic_vocabulary)
    words = {data: token for token, data in enumerate(synthetic_vocabulary.token_bytes)}
    matcher.fill_mask(mask)
    assert mask[words[b"\xc3"]] and mask[words[b"\xc3\xa9"]] and mask[words[b"\xe2\x82\xac"]]
    assert not mask[words[b"\xa9a"]] and not mask[words[b"\xf0\x9f\x94\xb5"]]
    assert matcher.accept_token(words[b"\xc3"])
    matcher.fill_mask(mask)
    assert np.flatnonzero(mask).tolist() == sorted([0xA9, words[b"\xa9a"]])
    assert matcher.accept_token(words[b"\xa9a"]) and matcher.is_complete()


def test_mask_buffer_is_checked(tiny_vocabulary: Vocabulary) -> None:
    matcher = GrammarMatcher(JSON_GRAMMAR, tiny_vocabulary)
    with pytest.raises(ValueError, match=f"shape \\({tiny_vocabulary.size},\\)"):
        matcher.fill_mask(np.zeros(tiny_vocabulary.size, dtype=np.float32))
    with pytest.raises(ValueError, match="np.zeros"):
        matcher.fill_mask(np.zeros(tiny_vocabulary.size + 1, dtype=bool))


def test_out_of_vocabulary_token_is_an_error(tiny_vocabulary: Vocabulary) -> None:
    with pytest.raises(ValueError, match="outside the vocabulary"):
        GrammarMatcher(JSON_GRAMMAR, tiny_vocabulary).accept_token(tiny_vocabulary.size)


def test_matchers_in_threads_share_one_grammar(tiny_vocabulary: Vocabulary) -> None:
    grammar = compile_gbnf((GBNF_DIR / "json.gbnf").read_text(encoding="utf-8"))
    texts = [b'{"a": [1, {"b": null}]}', b'{"key": "v\\u00e9", "n": -3.5e2}', b'{"x": {"y": {"z": []}}}']

    def walk(text: bytes) -> list[np.ndarray]:
        matcher = GrammarMatcher(grammar, tiny_vocabulary)
        masks = []
        for token in greedy_encode(tiny_vocabulary, text):
            mask = new_mask(tiny_vocabulary)
            matcher.fill_mask(mask)
            masks.append(mask)
            assert matcher.accept_token(token)
        return masks

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(walk, texts * 2))
    for text, masks in zip(texts * 2, results):
        matcher = GrammarMatcher(JSON_GRAMMAR, tiny_vocabulary)
        for token, mask in zip(greedy_encode(tiny_vocabulary, text), masks):
            np.testing.assert_array_equal(mask, reference_mask(matcher))
            assert matcher.accept_token(token)


def test_token_excluded_by_one_element_is_taken_by_another(synthetic_vocabulary: Vocabulary) -> None:
    first, second = SYNTHETIC_CONTROL_BASE + 1, SYNTHETIC_CONTROL_BASE + 2
    mask = new_mask(synthetic_vocabulary)
    either = GrammarMatcher(compile_gbnf(f"root ::= !<[{first}]> | !<[{second}]>"), synthetic_vocabulary)
    either.fill_mask(mask)
    assert mask.sum() == synthetic_vocabulary.size - 1 and not mask[SYNTHETIC_EOG]
    by_text = GrammarMatcher(compile_gbnf('root ::= !<[97]> | "a"'), synthetic_vocabulary)
    by_text.fill_mask(mask)
    np.testing.assert_array_equal(mask, reference_mask(by_text))
    assert mask[97]
    only_text = GrammarMatcher(compile_gbnf("root ::= !<[97]>"), synthetic_vocabulary)
    only_text.fill_mask(mask)
    assert not mask[97] and mask[98] and mask[SYNTHETIC_CONTROL_BASE]


def test_a_grammar_naming_a_token_the_vocabulary_lacks_is_refused(synthetic_vocabulary: Vocabulary) -> None:
    size = synthetic_vocabulary.size
    for gbnf in (f"root ::= <[{size}]>", f'root ::= "a" | !<[{size + 5}]>'):
        with pytest.raises(GrammarError, match=f"outside this model's vocabulary of {size} tokens"):
            GrammarMatcher(compile_gbnf(gbnf), synthetic_vocabulary)
    assert GrammarMatcher(compile_gbnf(f"root ::= <[{size - 1}]>"), synthetic_vocabulary).accept_token(size - 1)
