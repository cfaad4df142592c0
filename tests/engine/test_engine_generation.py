"""Generation on the tiny model through LoadedModel: determinism, stopping, streaming text, n / best_of / echo,
logprobs, logit bias and prefix reuse."""

from __future__ import annotations

import asyncio

import pytest
from engine_support import TINY_CONFIG, Generation, RunGeneration, collect

from edge_runtime.engine.choice_constraint import ChoiceConstraint
from edge_runtime.engine.loaded_model import LoadedModel
from edge_runtime.engine.scheduler import SCORED_PROMPT_CHUNK
from edge_runtime.engine.types import GenerationRequest, SamplingParams
from edge_runtime.errors import BadRequest, ContextLengthExceeded

PROMPT = "The quick brown fox jumps over the lazy dog."


def sampled(seed: int, **kwargs: object) -> SamplingParams:
    return SamplingParams(temperature=1.0, seed=seed, **kwargs)  # type: ignore[arg-type]


def test_same_seed_same_tokens_alone_and_among_concurrent_requests(
    tiny_llm: LoadedModel, run: RunGeneration
) -> None:
    prompt = tiny_llm.tokenize(PROMPT)
    request = GenerationRequest(prompt, sampled(42), max_tokens=24)
    alone = run(tiny_llm, request).tokens()

    async def together() -> list[Generation]:
        neighbours = [
            GenerationRequest(tiny_llm.tokenize("A model reads a prompt"), sampled(1), max_tokens=30),
            GenerationRequest(prompt, sampled(43), max_tokens=17),
        ]
        return await asyncio.gather(*(collect(tiny_llm, r) for r in [request, *neighbours]))

    results = asyncio.run(together())
    assert results[0].tokens() == alone
    assert len(alone) == 24
    assert results[2].tokens() != alone[:17]


def test_stream_pieces_add_up_to_the_final_text(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    generation = run(tiny_llm, GenerationRequest(tiny_llm.tokenize(PROMPT), sampled(3), max_tokens=40))
    choice = generation.done.choices[0]
    assert generation.streamed_text() == choice.text
    assert [t for piece in generation.pieces for t in piece.token_ids] == choice.token_ids
    assert choice.finish_reason == "length" and generation.done.completion_tokens == 40
    assert generation.done.prompt_tokens == len(tiny_llm.tokenize(PROMPT))


def spanning_stop(model: LoadedModel, tokens: list[int]) -> tuple[str, str]:
    """A two-character stop string made of the last character of one token and the first of the next, at its
    first occurrence in the text; and the text before it."""
    full = model.detokenize(tokens)
    for i in range(1, len(tokens)):
        head = model.detokenize(tokens[:i])
        left, right = model.token_text(tokens[i - 1]), model.token_text(tokens[i])
        if not (left.isascii() and right.isascii() and left.isprintable() and right.isprintable()):
            continue
        if not left or not right or full[: len(head)] != head:
            continue
        stop = full[len(head) - 1 : len(head) + 1]
        if full.find(stop) == len(head) - 1:
            return stop, full[: len(head) - 1]
    raise AssertionError(f"no two printable tokens in a row in {full!r}")


def test_stop_string_spanning_two_tokens(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    prompt = tiny_llm.tokenize(PROMPT)
    free = run(tiny_llm, GenerationRequest(prompt, sampled(5), max_tokens=60))
    stop, before = spanning_stop(tiny_llm, free.tokens())
    stopped = run(tiny_llm, GenerationRequest(prompt, sampled(5), max_tokens=60, stop=["never there", stop]))
    choice = stopped.done.choices[0]
    assert choice.finish_reason == "stop_string"
    assert choice.text == before
    assert stopped.streamed_text() == before
    assert all(stop not in piece.text for piece in stopped.pieces)


def partial_utf8_tokens(model: LoadedModel) -> dict[bytes, int]:
    """Tokens whose bytes are one piece of a multi-byte UTF-8 character (not text on their own)."""
    found: dict[bytes, int] = {}
    for token in range(model.n_vocab):
        data = model.tokenizer.token_bytes[token]
        if len(data) == 1 and data[0] >= 0x80:
            found[data] = token
    return found


def test_utf8_character_split_across_tokens_is_never_cut(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    partial = partial_utf8_tokens(tiny_llm)
    word = "café ☕"
    leads = {partial[b"\xc3"], partial[b"\xe2"], partial[b"\x98"]}
    assert leads <= set(tiny_llm.encode_bytes(word.encode()))
    generation = run(
        tiny_llm,
        GenerationRequest(
            tiny_llm.tokenize(PROMPT),
            max_tokens=20,
            constraint_factory=lambda: ChoiceConstraint([word], tiny_llm),
        ),
    )
    assert generation.done.choices[0].text == word
    assert generation.streamed_text() == word
    assert all("\ufffd" not in piece.text for piece in generation.pieces)
    held = [piece for piece in generation.pieces if piece.token_ids and piece.text == ""]
    assert {piece.token_ids[0] for piece in held} == leads


def test_prompt_longer_than_the_context_is_refused(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    too_long = tiny_llm.tokenize(PROMPT * 40)[: TINY_CONFIG.n_ctx_per_slot]
    with pytest.raises(ContextLengthExceeded) as error:
        run(tiny_llm, GenerationRequest(too_long))
    assert error.value.n_prompt == TINY_CONFIG.n_ctx_per_slot
    fits = run(tiny_llm, GenerationRequest(too_long[:-1]))
    assert fits.done.choices[0].finish_reason == "length"
    assert len(fits.tokens()) == 1


def test_bad_requests_are_refused_before_queueing(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    prompt = tiny_llm.tokenize(PROMPT)
    for request in (
        GenerationRequest([]),
        GenerationRequest(prompt, n=0),
        GenerationRequest(prompt, n=2, best_of=1),
        GenerationRequest(prompt, n=TINY_CONFIG.n_slots + 1),
        GenerationRequest(prompt, logprobs=-1),
        GenerationRequest([*prompt, tiny_llm.n_vocab]),
        GenerationRequest(prompt, SamplingParams(logit_bias={-1: 1.0})),
        GenerationRequest(prompt, max_tokens=-1),
        GenerationRequest(prompt, SamplingParams(temperature=-0.5)),
        GenerationRequest(prompt, SamplingParams(top_p=0.0)),
        GenerationRequest(prompt, SamplingParams(top_k=-1)),
        GenerationRequest(prompt, SamplingParams(min_p=1.5)),
        GenerationRequest(prompt, SamplingParams(repetition_penalty=0.0)),
    ):
        with pytest.raises(BadRequest):
            run(tiny_llm, request)


def test_n_choices_share_the_prompt_and_follow_their_own_seeds(
    tiny_llm: LoadedModel, run: RunGeneration
) -> None:
    prompt = tiny_llm.tokenize(PROMPT)
    three = run(tiny_llm, GenerationRequest(prompt, sampled(7), max_tokens=16, n=3))
    assert [c.index for c in three.finished] == [0, 1, 2]
    assert [c.index for c in three.done.choices] == [0, 1, 2]
    tokens = [three.tokens(i) for i in range(3)]
    assert len({tuple(t) for t in tokens}) == 3
    assert all(three.streamed_text(i) == three.done.choices[i].text for i in range(3))
    assert three.done.completion_tokens == 48
    alone = run(tiny_llm, GenerationRequest(prompt, sampled(7), max_tokens=16))
    assert alone.tokens() == tokens[0]
    greedy = run(tiny_llm, GenerationRequest(prompt, max_tokens=16, n=2))
    assert greedy.tokens(0) == greedy.tokens(1)


def test_best_of_keeps_the_choices_with_the_highest_total_logprob(
    tiny_llm: LoadedModel, run: RunGeneration
) -> None:
    prompt = tiny_llm.tokenize(PROMPT)
    candidates = run(tiny_llm, GenerationRequest(prompt, sampled(9), max_tokens=12, n=4, logprobs=0))
    ranked = sorted(candidates.done.choices, key=lambda c: c.cumulative_logprob, reverse=True)
    for choice in candidates.done.choices:
        assert choice.cumulative_logprob == pytest.approx(
            sum(e.logprob for e in choice_logprobs(candidates, choice.index))
        )
    best = run(tiny_llm, GenerationRequest(prompt, sampled(9), max_tokens=12, n=2, best_of=4))
    assert [c.token_ids for c in best.done.choices] == [c.token_ids for c in ranked[:2]]
    assert [c.cumulative_logprob for c in best.done.choices] == pytest.approx(
        [c.cumulative_logprob for c in ranked[:2]]
    )
    assert [c.index for c in best.done.choices] == [0, 1]
    assert [len(best.pieces), best.pieces[0].text] == [2, best.done.choices[0].text]
    assert best.pieces[0].logprobs is None


def choice_logprobs(generation: Generation, index: int) -> list:  # type: ignore[type-arg]
    return [e for piece in generation.pieces if piece.index == index for e in piece.logprobs or []]


def test_echo_puts_the_prompt_first(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    prompt = tiny_llm.tokenize(PROMPT)
    generation = run(tiny_llm, GenerationRequest(prompt, max_tokens=5, echo=True))
    first = generation.pieces[0]
    assert first.token_ids == prompt and first.text == tiny_llm.detokenize(prompt) and first.logprobs is None
    choice = generation.done.choices[0]
    assert choice.text.startswith(tiny_llm.detokenize(prompt))
    assert choice.token_ids == generation.tokens() and len(choice.token_ids) == 5


def test_echo_with_no_new_tokens_scores_the_prompt_only(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    prompt = tiny_llm.tokenize(PROMPT)
    generation = run(tiny_llm, GenerationRequest(prompt, max_tokens=0, echo=True, logprobs=1, n=2))
    assert [c.finish_reason for c in generation.done.choices] == ["length", "length"]
    assert [c.text for c in generation.done.choices] == [tiny_llm.detokenize(prompt)] * 2
    assert generation.done.completion_tokens == 0
    echoed = generation.pieces[0].logprobs
    assert echoed is not None and len(echoed) == len(prompt)


def test_echo_with_logprobs_scores_every_prompt_token(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    prompt = tiny_llm.tokenize(PROMPT * 5)
    assert len(prompt) > 2 * SCORED_PROMPT_CHUNK
    generation = run(tiny_llm, GenerationRequest(prompt, max_tokens=3, echo=True, logprobs=3))
    echoed = generation.pieces[0].logprobs
    assert echoed is not None and len(echoed) == len(prompt) and echoed[0] is None
    for token, entry in zip(prompt[1:], echoed[1:], strict=True):
        assert entry is not None and entry.token_id == token and entry.logprob <= 0.0
    # The prompt's last token scored in the echo is the first token generated from the prompt without it.
    shorter = run(tiny_llm, GenerationRequest(prompt[:-1], max_tokens=1, logprobs=3))
    next_entry = shorter.pieces[0].logprobs[0]  # type: ignore[index]
    last = echoed[-1]
    assert last is not None and next_entry is not None
    assert [t for t, _, _ in last.top] == [t for t, _, _ in next_entry.top]
    assert [lp for _, _, lp in last.top] == pytest.approx([lp for _, _, lp in next_entry.top], abs=1e-3)


def test_logprobs_are_at_most_zero_and_top_n_sorted(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    generation = run(
        tiny_llm, GenerationRequest(tiny_llm.tokenize(PROMPT), sampled(11), max_tokens=20, logprobs=5)
    )
    entries = choice_logprobs(generation, 0)
    assert [e.token_id for e in entries] == generation.tokens()
    for entry in entries:
        values = [lp for _, _, lp in entry.top]
        assert len(entry.top) == 5 and entry.logprob <= 0.0 and all(v <= 0.0 for v in values)
        assert values == sorted(values, reverse=True)
        if entry.token_id in [t for t, _, _ in entry.top]:
            assert {t: lp for t, _, lp in entry.top}[entry.token_id] == pytest.approx(entry.logprob)
        else:
            assert entry.logprob <= values[-1]
    greedy = run(tiny_llm, GenerationRequest(tiny_llm.tokenize(PROMPT), max_tokens=8, logprobs=1))
    assert all(e.top[0][0] == e.token_id for e in choice_logprobs(greedy, 0))


def test_logit_bias_forces_and_bans_tokens(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    prompt = tiny_llm.tokenize(PROMPT)
    greedy = run(tiny_llm, GenerationRequest(prompt, max_tokens=6)).tokens()
    banned = run(
        tiny_llm, GenerationRequest(prompt, SamplingParams(logit_bias={greedy[0]: -100.0}), max_tokens=6)
    )
    assert greedy[0] not in banned.tokens()
    forced_token = tiny_llm.tokenize("Z", add_special=False)[0]
    forced = run(
        tiny_llm, GenerationRequest(prompt, sampled(1, logit_bias={forced_token: 100.0}), max_tokens=6)
    )
    assert forced.tokens() == [forced_token] * 6 and forced.done.choices[0].text == "Z" * 6


def test_penalties_change_a_greedy_generation(tiny_llm: LoadedModel, run: RunGeneration) -> None:
    prompt = tiny_llm.tokenize(PROMPT)
    plain = run(tiny_llm, GenerationRequest(prompt, max_tokens=40)).tokens()
    repeated = max(set(plain), key=plain.count)
    assert plain.count(repeated) > 1
    for params in (
        SamplingParams(frequency_penalty=2.0),
        SamplingParams(presence_penalty=2.0),
        SamplingParams(repetition_penalty=1.8),
    ):
        tokens = run(tiny_llm, GenerationRequest(prompt, params, max_tokens=40)).tokens()
        assert tokens != plain
        assert max(tokens.count(t) for t in set(tokens)) <= plain.count(repeated)


def test_prefix_reuse_reports_cached_tokens_and_keeps_greedy_output(
    make_tiny_llm,
    run: RunGeneration,  # type: ignore[no-untyped-def]
) -> None:
    model: LoadedModel = make_tiny_llm(TINY_CONFIG)
    shared = model.tokenize("Please return the name of the city, the country and the population as JSON.")
    first = run(model, GenerationRequest(shared, max_tokens=12))
    assert first.done.cached_prompt_tokens == 0
    again = run(model, GenerationRequest(shared, max_tokens=12))
    assert again.done.cached_prompt_tokens == len(shared) - 1
    assert again.tokens() == first.tokens()
    longer = [*shared, *model.tokenize(" The city is", add_special=False)]
    extended = run(model, GenerationRequest(longer, max_tokens=12))
    assert extended.done.cached_prompt_tokens >= len(shared)
    cold: LoadedModel = make_tiny_llm(TINY_CONFIG)
    assert run(cold, GenerationRequest(longer, max_tokens=12)).tokens() == extended.tokens()
