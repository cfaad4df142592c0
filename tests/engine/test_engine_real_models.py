"""End to end on the real models (Gemma 3 270M, SmolLM2-135M-Instruct): greedy decoding is llama.cpp's own, a
choice constraint picks one of its choices, seeds hold across runs and batch positions.

Model outputs differ between CPUs and builds (AVX2 against AVX-512 changes the last bits of the logits, and so a
base model's prose), so nothing here pins the model's text: the reference is llama.cpp itself, run in the same
test on the same file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from engine_support import RunGeneration, collect

from edge_runtime.engine.choice_constraint import ChoiceConstraint
from edge_runtime.engine.llama_handles import extra_buffer_types_allowed, flash_attention
from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.types import GenerationRequest, SamplingParams

PROMPT = "Q: What is the capital of France?\nA:"
LOGIT_TOLERANCE = 1e-2
"""How far below llama.cpp's best logit our greedy token may be: batch shapes change the summation order of
llama.cpp's kernels, so two tokens within this of each other are a tie that either run may break."""


@pytest.fixture(
    scope="module",
    params=[pytest.param("gemma", marks=pytest.mark.gemma), pytest.param("smollm2", marks=pytest.mark.smollm2)],
)
def model_path(request: pytest.FixtureRequest) -> Path:
    path: Path = request.getfixturevalue(f"{request.param}_model_path")
    return path


@pytest.fixture(scope="module")
def real(model_path: Path) -> Iterator[LoadedModel]:
    # One thread: with other tests busy on both cores, two llama.cpp threads wait for each other at every op.
    model = LoadedModel(model_path, "real", EngineConfig(n_slots=3, n_ctx_per_slot=512, n_threads=1))
    yield model
    model.close()


def llama_cpp_logits(model_path: Path, tokens: list[int], real: LoadedModel) -> np.ndarray:
    """llama.cpp's own logits at every position of `tokens`: one bare decode of one sequence through the
    binding, none of the engine's scheduling, batching or sampling; the engine's attention kernel for its
    cache, so the arithmetic is the same."""
    import llama_cpp as llama

    params = llama.llama_model_default_params()
    params.use_extra_bufts = extra_buffer_types_allowed()
    model = llama.llama_model_load_from_file(str(model_path).encode(), params)
    assert model, "llama.cpp could not load the model"
    cparams = llama.llama_context_default_params()
    cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = 512
    cparams.n_threads = cparams.n_threads_batch = 1
    cparams.flash_attn_type = flash_attention(real.kv_cache_type, sliding_window=bool(real.info.sliding_window))
    context = llama.llama_init_from_model(model, cparams)
    batch = llama.llama_batch_init(len(tokens), 0, 1)
    try:
        for position, token in enumerate(tokens):
            batch.token[position] = token
            batch.pos[position] = position
            batch.n_seq_id[position] = 1
            batch.seq_id[position][0] = 0
            batch.logits[position] = True
        batch.n_tokens = len(tokens)
        assert llama.llama_decode(context, batch) == 0
        n_vocab = llama.llama_vocab_n_tokens(llama.llama_model_get_vocab(model))
        logits = llama.llama_get_logits(context)
        return np.ctypeslib.as_array(logits, shape=(len(tokens), n_vocab)).copy()
    finally:
        llama.llama_batch_free(batch)
        llama.llama_free(context)
        llama.llama_model_free(model)


def test_greedy_is_llama_cpp_greedy(real: LoadedModel, model_path: Path, run: RunGeneration) -> None:
    prompt = real.tokenize(PROMPT)
    assert real.architecture in ("gemma3", "llama") and real.tokenizer.eog_ids
    greedy = run(real, GenerationRequest(prompt, max_tokens=12, stop=["\n"]))
    choice = greedy.done.choices[0]
    generated = choice.token_ids
    assert generated and choice.finish_reason in ("stop_string", "length", "stop")
    assert greedy.streamed_text() == choice.text
    if choice.finish_reason == "stop_string":
        assert "\n" not in choice.text and "\n" in real.detokenize(generated)

    logits = llama_cpp_logits(model_path, prompt + generated, real)
    for step, token in enumerate(generated):
        row = logits[len(prompt) - 1 + step]
        best = int(np.argmax(row))
        assert row[token] >= row[best] - LOGIT_TOLERANCE, (
            f"step {step}: we took {real.token_text(token)!r} ({row[token]:.4f}), "
            f"llama.cpp prefers {real.token_text(best)!r} ({row[best]:.4f})"
        )

    again = run(real, GenerationRequest(prompt, max_tokens=12, stop=["\n"]))
    assert again.tokens() == generated


def test_choice_constraint_picks_a_choice(real: LoadedModel, run: RunGeneration) -> None:
    prompt = real.tokenize(PROMPT)
    cities = [" London", " Paris", " Berlin", " Paris, France"]
    chosen = run(
        real,
        GenerationRequest(
            prompt, max_tokens=10, logprobs=2, constraint_factory=lambda: ChoiceConstraint(cities, real)
        ),
    )
    assert chosen.done.choices[0].text in cities
    assert chosen.done.choices[0].finish_reason != "length"


def test_seeds_hold_across_batch_positions(real: LoadedModel, run: RunGeneration) -> None:
    prompt = real.tokenize(PROMPT)
    request = GenerationRequest(prompt, SamplingParams(temperature=0.9, top_p=0.95, seed=5), max_tokens=12)
    # A prompt read afresh (one batch of all its tokens) and one found in a slot (its last token read again)
    # differ by a batch shape, whose float noise can move a sampled token (SmolLM2 Q4_1: 0.07 in a logprob):
    # every run below finds the prompt in a slot, whatever ran before this test.
    run(real, request)
    alone = run(real, request).tokens()
    assert run(real, request).tokens() == alone

    async def together() -> list[list[int]]:
        others = [
            GenerationRequest(
                real.tokenize("Once upon a time"), SamplingParams(temperature=1.0, seed=1), max_tokens=16
            ),
            GenerationRequest(
                real.tokenize("def main():"), SamplingParams(temperature=0.7, seed=2), max_tokens=9
            ),
        ]
        results = await asyncio.gather(*(collect(real, r) for r in [request, *others]))
        return [result.tokens() for result in results]

    assert asyncio.run(together())[0] == alone
