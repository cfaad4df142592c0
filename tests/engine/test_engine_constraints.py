"""Constraints in the engine: the choice constraint on its own and in generation, and grammar jump-forward."""

from __future__ import annotations

import re

import numpy as np
import pytest
from engine_support import RunGeneration

from edge_runtime.engine.choice_constraint import ChoiceConstraint
from edge_runtime.engine.grammar_constraint import GrammarConstraint
from edge_runtime.engine.loaded_model import LoadedModel
from edge_runtime.engine.types import GenerationRequest, SamplingParams
from edge_runtime.errors import BadRequest
from edge_runtime.grammar import GrammarMatcher, compile_gbnf

CITIES = ["Paris", "Berlin", "London town", "Lond"]


def allowed(constraint: ChoiceConstraint, model: LoadedModel) -> set[int]:
    mask = np.zeros(model.n_vocab, dtype=np.bool_)
    constraint.fill_mask(mask)
    return set(np.flatnonzero(mask).tolist())


def prefix_tokens(model: LoadedModel, choices: list[str], written: bytes) -> set[int]:
    """Every text token whose bytes keep `written` a prefix of some choice, found by brute force."""
    vocabulary = model.vocabulary
    found = set()
    for token in vocabulary.text_token_ids():
        text = written + vocabulary.token_bytes[token]
        if any(choice.encode().startswith(text) for choice in choices):
            found.add(token)
    return found


def test_mask_is_every_token_that_keeps_a_choice_prefix(tiny_llm: LoadedModel) -> None:
    constraint = ChoiceConstraint(CITIES, tiny_llm)
    eog = set(tiny_llm.tokenizer.eog_ids)
    assert allowed(constraint, tiny_llm) == prefix_tokens(tiny_llm, CITIES, b"")
    for token in tiny_llm.encode_bytes(b"Lond"):
        assert constraint.accept_token(token)
    assert constraint.is_complete()
    assert allowed(constraint, tiny_llm) == prefix_tokens(tiny_llm, CITIES, b"Lond") | eog
    assert constraint.forced_tokens() == []


def test_any_spelling_of_a_choice_is_accepted(tiny_llm: LoadedModel) -> None:
    constraint = ChoiceConstraint(CITIES, tiny_llm)
    byte_tokens = tiny_llm.tokenize("P", add_special=False) + tiny_llm.tokenize("a", add_special=False)
    assert tiny_llm.encode_bytes(b"Paris") != byte_tokens[:1]
    for token in byte_tokens:
        assert constraint.accept_token(token)
    assert not constraint.accept_token(tiny_llm.tokenize("x", add_special=False)[0])
    assert constraint.text == b"Pa"
    rest = constraint.forced_tokens()
    assert tiny_llm.detokenize(rest) == "ris"
    for token in rest:
        assert constraint.accept_token(token)
    assert constraint.is_complete() and allowed(constraint, tiny_llm) == set(tiny_llm.tokenizer.eog_ids)


def test_end_of_generation_only_after_a_whole_choice(tiny_llm: LoadedModel) -> None:
    eog = min(tiny_llm.tokenizer.eog_ids)
    constraint = ChoiceConstraint(CITIES, tiny_llm)
    assert not constraint.accept_token(eog)
    assert constraint.accept_token(tiny_llm.encode_bytes(b"L")[0])
    assert not constraint.accept_token(eog)
    assert not constraint.accept_token(min(tiny_llm.tokenizer.control_ids - tiny_llm.tokenizer.eog_ids))
    for token in tiny_llm.encode_bytes(b"ond"):
        assert constraint.accept_token(token)
    assert constraint.accept_token(eog)


def test_forced_tokens_follow_the_canonical_trie(tiny_llm: LoadedModel) -> None:
    constraint = ChoiceConstraint(CITIES, tiny_llm)
    assert constraint.forced_tokens() == []
    berlin = tiny_llm.encode_bytes(b"Berlin")
    assert constraint.accept_token(berlin[0])
    assert constraint.forced_tokens() == berlin[1:]
    london = ChoiceConstraint(CITIES, tiny_llm)
    assert london.accept_token(tiny_llm.encode_bytes(b"L")[0])
    assert london.forced_tokens() == tiny_llm.encode_bytes(b"Lond")[1:]


def test_forced_tokens_never_skip_a_choice_spelled_another_way(tiny_llm: LoadedModel) -> None:
    """ "the" is spelled t|he and "th" t|h: after t, he is the trie's only way on, yet "th" is still possible."""
    t, he, h = (tiny_llm.encode_bytes(text)[0] for text in (b"t", b"he", b"h"))
    spellings = {b"the": [t, he], b"th": [t, h]}
    constraint = ChoiceConstraint(["the", "th"], tiny_llm, encode=spellings.__getitem__)
    assert constraint.forced_tokens() == [t]
    single = {b"the": [t, he], b"th": [tiny_llm.encode_bytes(b"th")[0]]}
    constraint = ChoiceConstraint(["the", "th"], tiny_llm, encode=single.__getitem__)
    assert constraint.accept_token(t)
    assert constraint.forced_tokens() == []


def test_no_choices_is_a_bad_request(tiny_llm: LoadedModel) -> None:
    with pytest.raises(BadRequest):
        ChoiceConstraint([], tiny_llm)


def choice_request(model: LoadedModel, sampling: SamplingParams) -> GenerationRequest:
    return GenerationRequest(
        model.tokenize("The capital of France is"),
        sampling,
        max_tokens=40,
        constraint_factory=lambda: ChoiceConstraint(CITIES, model),
    )


def test_generation_always_yields_one_of_the_choices(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    greedy = run(tiny_llm, choice_request(tiny_llm, SamplingParams()))
    assert greedy.done.choices[0].text in CITIES
    texts = []
    for seed in range(24):
        generation = run(tiny_llm, choice_request(tiny_llm, SamplingParams(temperature=3.0, seed=seed)))
        choice = generation.done.choices[0]
        assert choice.finish_reason == "stop" and choice.text in CITIES
        assert generation.streamed_text() == choice.text
        texts.append(choice.text)
    assert len(set(texts)) >= 3


def test_jump_forward_tokens_are_taken_even_when_sampling_would_never_pick_them(
    tiny_llm: LoadedModel, run: RunGeneration
) -> None:
    grammar = compile_gbnf('root ::= "{\\"name\\": \\"" [a-z]+ "\\"}"')
    vocabulary = tiny_llm.vocabulary
    head = b'{"name": "'
    spellings = {token for start in range(len(head)) for token in tiny_llm.encode_bytes(head[start:])}
    banned = SamplingParams(
        logit_bias={token: -100.0 for token in spellings if tiny_llm.token_text(token) != "{"}
    )
    prompt = tiny_llm.tokenize("Return the name as JSON:")
    free = run(tiny_llm, GenerationRequest(prompt, banned, max_tokens=30))
    assert not set(free.tokens()) & set(banned.logit_bias)
    constrained = run(
        tiny_llm,
        GenerationRequest(
            prompt,
            banned,
            max_tokens=30,
            constraint_factory=lambda: GrammarConstraint(GrammarMatcher(grammar, vocabulary), tiny_llm.encode_bytes),
        ),
    )
    tokens = constrained.tokens()
    assert tokens[0] == tiny_llm.encode_bytes(b"{")[0]
    forced = tiny_llm.encode_bytes(head[1:])
    assert tokens[1 : 1 + len(forced)] == forced and set(forced) <= set(banned.logit_bias)
    assert re.fullmatch(r'\{"name": "[a-z]*("\})?', constrained.done.choices[0].text)


def test_a_wholly_forced_grammar_stops_when_complete(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    grammar = compile_gbnf('root ::= "{\\"ok\\": true}"')
    vocabulary = tiny_llm.vocabulary
    generation = run(
        tiny_llm,
        GenerationRequest(
            tiny_llm.tokenize("Answer:"),
            SamplingParams(temperature=1.0, seed=4),
            max_tokens=30,
            constraint_factory=lambda: GrammarConstraint(GrammarMatcher(grammar, vocabulary), tiny_llm.encode_bytes),
        ),
    )
    choice = generation.done.choices[0]
    assert choice.text == '{"ok": true}' and choice.finish_reason == "stop"


def test_a_byte_token_inside_a_forced_character_is_followed_by_sampling(tiny_llm: LoadedModel) -> None:
    """A byte token can take the lead byte of a character the grammar forces; the rest of that character is
    not text the tokenizer can take, so jump-forward waits (it raised UnicodeDecodeError, failing the
    generation) and the mask offers the continuation byte."""
    grammar = compile_gbnf('root ::= "é!"')
    constraint = GrammarConstraint(GrammarMatcher(grammar, tiny_llm.vocabulary), tiny_llm.encode_bytes)
    lead = next(t for t in tiny_llm.vocabulary.text_token_ids() if tiny_llm.vocabulary.token_bytes[t] == b"\xc3")
    assert constraint.accept_token(lead)
    assert constraint.forced_tokens() == []
    mask = np.zeros(tiny_llm.n_vocab, dtype=np.bool_)
    constraint.fill_mask(mask)
    assert [tiny_llm.vocabulary.token_bytes[t] for t in np.flatnonzero(mask)] == [b"\xa9"]


def test_a_job_whose_constraint_cannot_start_fails_alone(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    """The constraint factory runs on the scheduler thread; its error fails that request only (it used to
    end the thread, and every later request on the model waited forever)."""
    eos = min(tiny_llm.vocabulary.eog_ids)
    asks_for_eos = compile_gbnf(f'root ::= "a" <[{eos}]>')
    vocabulary = tiny_llm.vocabulary
    prompt = tiny_llm.tokenize("Answer:")
    refused = GenerationRequest(
        prompt,
        SamplingParams(),
        max_tokens=5,
        constraint_factory=lambda: GrammarConstraint(GrammarMatcher(asks_for_eos, vocabulary), tiny_llm.encode_bytes),
    )
    with pytest.raises(BadRequest, match="ends generation"):
        run(tiny_llm, refused)
    assert run(tiny_llm, GenerationRequest(prompt, SamplingParams(), max_tokens=3)).done.completion_tokens > 0
