"""Benchmark the engine beside llama-cpp-python's own `Llama` on the same model, threads and prompts.

    python scripts/bench_engine.py [--model PATH] [--threads N] [--tokens N] [--repeats N] [--ubatch-sweep]
                                   [--llama-server PATH] [--only-rounds] [--extraction N]

Prints single-stream decode tokens/s, prompt tokens/s, the aggregate tokens/s of 4 concurrent streams and the
time to first token on a repeated 1,000-token prefix (first vs second time), each with the ratio to `Llama`,
and the machine's load average before and after (numbers taken on a busy machine mean little). Each figure is
the best of `--repeats` runs, engine and baseline taking turns. Llama serves one sequence at a time, so its
4-stream aggregate is its single-stream rate.

Then the same 4 concurrent streams three rounds in a row on a freshly loaded model, beside llama-server (same
GGUF, slots, context, threads and micro-batch) when its binary is there: from the second round on, each slot
holds its stream's earlier sequence, which prefix reuse cuts back and extends, and the streams arrive in
another order (as a server's clients do), so a stream's slot no longer matches its place in the batch.

`--extraction N` instead times the first token of N extraction requests (one prefix, new documents) on one
slot, the window-only cache with prefix checkpoints beside swa_full.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx
from bench_support import DEFAULT_LLAMA_SERVER, free_port, llama_server_command, load_average, running
from llama_peer import engine_like_llama

from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
from edge_runtime.engine.types import GenerationDone, GenerationRequest, SamplingParams, TextPiece

if TYPE_CHECKING:
    from llama_cpp import Llama

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO_ROOT / ".cache" / "test-models" / "gemma-3-270m-q4_k_m.gguf"
UBATCH_SIZES = (32, 64, 128, 256)
PREFIX_TOKENS = 1000
STREAMS = 4
ROUNDS = 3

SENTENCES = [
    "The committee reviewed the quarterly figures and asked for a second opinion on the forecast.",
    "A small river runs through the valley, and the farmers use it to water their fields in summer.",
    "Every record in the archive carries a name, a date, a place and a short description of the event.",
    "The engineers measured the bridge twice, once in the cold morning and once in the afternoon heat.",
    "Our library lends books, maps and recordings, and it keeps a reading room open until nine.",
    "When the train was late, the passengers waited in the hall and talked about the weather.",
]


class Tokenizes(Protocol):
    def tokenize(self, text: str) -> list[int]: ...


def document(label: str, n_tokens: int, model: Tokenizes) -> list[int]:
    """Deterministic prose of about `n_tokens` tokens, starting with `label` (different labels share only BOS)."""
    text = label
    index = 0
    while len(model.tokenize(text)) < n_tokens:
        text += f" {index}. {SENTENCES[index % len(SENTENCES)]}"
        index += 1
    return model.tokenize(text)[:n_tokens]


@dataclass(frozen=True)
class Timing:
    first_token_s: float
    decode_tokens_per_s: float


def best(runs: int, measure: Callable[[], float]) -> float:
    return max(measure() for _ in range(runs))


def best_in_turns(runs: int, ours: Callable[[], float], theirs: Callable[[], float]) -> tuple[float, float]:
    """The highest of each, measured alternately so a change in the machine's load hits both alike."""
    pairs = [(ours(), theirs()) for _ in range(runs)]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


# --- our engine --------------------------------------------------------------------------------------------


async def engine_stream(model: LoadedModel, prompt: list[int], n_tokens: int) -> Timing:
    """Greedy, end-of-generation banned so every run writes exactly n_tokens."""
    no_end = {token: -1e9 for token in model.tokenizer.eog_ids}
    request = GenerationRequest(prompt, SamplingParams(logit_bias=no_end), max_tokens=n_tokens)
    start = time.perf_counter()
    first = last = 0.0
    produced = 0
    async for event in model.generate(request):
        if isinstance(event, TextPiece) and event.token_ids:
            last = time.perf_counter()
            produced += len(event.token_ids)
            if produced == len(event.token_ids):
                first = last
        elif isinstance(event, GenerationDone):
            break
    if produced != n_tokens:
        raise RuntimeError(f"the engine wrote {produced} tokens, not {n_tokens}")
    return Timing(first - start, (n_tokens - 1) / (last - first))


def engine_decode(model: LoadedModel, prompt: list[int], n_tokens: int) -> float:
    return asyncio.run(engine_stream(model, prompt, n_tokens)).decode_tokens_per_s


def engine_first_token(model: LoadedModel, prompt: list[int]) -> float:
    return asyncio.run(engine_stream(model, prompt, 2)).first_token_s


def engine_concurrent(model: LoadedModel, prompts: list[list[int]], n_tokens: int) -> float:
    async def together() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(engine_stream(model, prompt, n_tokens) for prompt in prompts))
        return len(prompts) * n_tokens / (time.perf_counter() - start)

    return asyncio.run(together())


# --- llama-cpp-python's Llama ------------------------------------------------------------------------------


def llama_stream(llm: Llama, prompt: list[int], n_tokens: int) -> Timing:
    """Greedy through Llama.generate, which (unlike create_completion) never stops at end of generation."""
    start = time.perf_counter()
    first = last = 0.0
    for produced, _ in enumerate(llm.generate(prompt, top_k=1, temp=0.0), start=1):
        last = time.perf_counter()
        if produced == 1:
            first = last
        if produced == n_tokens:
            break
    return Timing(first - start, (n_tokens - 1) / (last - first))


def llama_prompt(llm: Llama, prompt: list[int]) -> float:
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt)
    return len(prompt) / (time.perf_counter() - start)


def llama_first_token(llm: Llama, prompt: list[int]) -> float:
    return llama_stream(llm, prompt, 2).first_token_s


# --- the report --------------------------------------------------------------------------------------------


def row(name: str, ours: float, theirs: float, unit: str, *, lower_is_better: bool = False) -> None:
    ratio = theirs / ours if lower_is_better else ours / theirs
    print(f"{name:<44} {ours:>10.1f} {theirs:>10.1f} {unit:<9} {ratio:>6.2f}x")


@contextmanager
def open_models(path: Path, config: EngineConfig) -> Iterator[tuple[LoadedModel, Llama]]:
    """Our engine and llama-cpp-python's Llama on the same file, loaded the same way (see llama_peer)."""
    model = LoadedModel(path, "bench", config)
    llm = engine_like_llama(
        path,
        n_ctx=config.n_ctx_per_slot,
        n_threads=config.threads,
        n_threads_batch=config.threads,
        n_batch=config.n_batch,
        n_ubatch=config.n_ubatch,
        swa_full=True,
        verbose=False,
    )
    try:
        yield model, llm
    finally:
        llm.close()
        model.close()


def compare(path: Path, config: EngineConfig, n_tokens: int, repeats: int) -> None:
    with open_models(path, config) as (model, llm):
        short = document("Write a long story about the valley.", 24, model)
        fresh = iter(range(10**6))

        def new_document() -> list[int]:
            return document(f"Document number {next(fresh)}:", PREFIX_TOKENS, model)

        print(f"{'':<44} {'engine':>10} {'Llama':>10} {'':<9} {'ratio':>7}")
        ours_decode, theirs_decode = best_in_turns(
            repeats,
            lambda: engine_decode(model, short, n_tokens),
            lambda: llama_stream(llm, short, n_tokens).decode_tokens_per_s,
        )
        row(f"decode, 1 stream, {n_tokens} tokens", ours_decode, theirs_decode, "tokens/s")

        ours_prompt, theirs_prompt = best_in_turns(
            repeats,
            lambda: PREFIX_TOKENS / engine_first_token(model, new_document()),
            lambda: llama_prompt(llm, new_document()),
        )
        row(f"prompt, {PREFIX_TOKENS} tokens", ours_prompt, theirs_prompt, "tokens/s")

        prompts = [document(f"Story {i} begins here.", 24, model) for i in range(STREAMS)]
        ours_streams = best(repeats, lambda: engine_concurrent(model, prompts, n_tokens))
        # Llama serves one sequence at a time: its aggregate over several streams is its single-stream rate.
        row(f"decode, {STREAMS} concurrent streams (aggregate)", ours_streams, theirs_decode, "tokens/s")
        print(f"{'':<44} {STREAMS} streams / 1 stream (engine): {ours_streams / ours_decode:.2f}x")

        def first_and_again(first_token: Callable[[list[int]], float]) -> tuple[float, float]:
            shared = new_document()
            cold = first_token([*shared, *model.tokenize(" First question:", add_special=False)])
            warm = first_token([*shared, *model.tokenize(" Second question:", add_special=False)])
            return cold, warm

        turns = [
            (
                first_and_again(lambda p: engine_first_token(model, p)),
                first_and_again(lambda p: llama_first_token(llm, p)),
            )
            for _ in range(repeats)
        ]
        ours_cold, ours_warm = min((ours for ours, _ in turns), key=sum)
        theirs_cold, theirs_warm = min((theirs for _, theirs in turns), key=sum)
        row(
            f"first token, new {PREFIX_TOKENS}-token prompt",
            ours_cold * 1e3,
            theirs_cold * 1e3,
            "ms",
            lower_is_better=True,
        )
        row(
            f"first token, same {PREFIX_TOKENS}-token prefix again",
            ours_warm * 1e3,
            theirs_warm * 1e3,
            "ms",
            lower_is_better=True,
        )
        print(
            f"{'':<44} first / again (engine): {ours_cold / ours_warm:.1f}x, (Llama): {theirs_cold / theirs_warm:.1f}x"
        )


# --- four streams, three rounds in a row, beside llama-server -------------------------------------------------


def llama_server_rounds(
    binary: Path, path: Path, config: EngineConfig, prompts: list[list[int]], n_tokens: int
) -> list[float]:
    """The same for llama-server, same slots, context, threads and micro-batch, the prompts sent as tokens."""
    port = free_port()
    command = llama_server_command(
        binary, path, port, threads=config.threads, slots=config.n_slots, ctx_per_slot=config.n_ctx_per_slot
    )

    async def together(http: httpx.AsyncClient, prompts: list[list[int]]) -> float:
        async def stream(prompt: list[int]) -> None:
            body = {"prompt": prompt, "n_predict": n_tokens, "temperature": 0.0, "ignore_eos": True}
            answer = await http.post("/completion", json=body)
            answer.raise_for_status()
            if answer.json()["tokens_predicted"] != n_tokens:
                raise RuntimeError(
                    f"llama-server wrote {answer.json()['tokens_predicted']} tokens, not {n_tokens}"
                )

        start = time.perf_counter()
        await asyncio.gather(*(stream(prompt) for prompt in prompts))
        return len(prompts) * n_tokens / (time.perf_counter() - start)

    async def rounds() -> list[float]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600.0) as http:
            return [await together(http, arrival_order(prompts, n)) for n in range(ROUNDS)]

    with running(command, port, "/health"):
        return asyncio.run(rounds())


def arrival_order(prompts: list[list[int]], round_index: int) -> list[list[int]]:
    """The streams in the order they arrive in a round: as given, then reversed, then rotated by one, ..."""
    if round_index % 2:
        return prompts[::-1]
    shift = round_index // 2 % len(prompts)
    return prompts[shift:] + prompts[:shift]


def repeated_rounds(path: Path, config: EngineConfig, n_tokens: int, llama_server: Path | None) -> None:
    """Aggregate tokens/s of the same concurrent streams, ROUNDS times on a freshly loaded model: from the
    second round on, every slot holds its stream's earlier sequence, which prefix reuse cuts back and extends."""
    model = LoadedModel(path, "bench", config)
    try:
        prompts = [document(f"Story {i} begins here.", 24, model) for i in range(STREAMS)]
        ours = [engine_concurrent(model, arrival_order(prompts, n), n_tokens) for n in range(ROUNDS)]
    finally:
        model.close()
    if llama_server is None:
        theirs = [float("nan")] * ROUNDS
        print(f"\n{STREAMS} streams x {n_tokens} tokens, {ROUNDS} rounds in a row (no llama-server given)")
    else:
        theirs = llama_server_rounds(llama_server, path, config, prompts, n_tokens)
        print(f"\n{STREAMS} streams x {n_tokens} tokens, {ROUNDS} rounds in a row, beside llama-server")
    print(f"{'':<44} {'engine':>10} {'server':>10} {'':<9} {'ratio':>7}")
    for number, (mine, peer) in enumerate(zip(ours, theirs, strict=True), start=1):
        row(f"round {number}, aggregate", mine, peer, "tokens/s")
    print(f"{'':<44} last round / first (engine): {ours[-1] / ours[0]:.2f}x")


EXTRACTION_PREFIX = 700
EXTRACTION_DOCUMENT = 300
EXTRACTION_ANSWER = 100


def extraction_first_tokens(path: Path, config: EngineConfig, n_documents: int) -> None:
    """An extraction script on one slot: a 700-token instruction prefix, then a different 300-token document
    and a 100-token answer each time. With Gemma's sliding-window layers holding only their window, each answer
    moves the window past the prefix: prefix checkpoints keep the reuse that swa_full keeps by holding the whole
    cache. The two engines take turns, request by request."""
    one_slot = replace(config, n_slots=1)
    engines = {
        "window + checkpoints": replace(one_slot, swa_full=False),
        "swa_full": replace(one_slot, swa_full=True),
    }
    models = {name: LoadedModel(path, "bench", engine) for name, engine in engines.items()}
    try:
        first_tokens: dict[str, list[float]] = {name: [] for name in models}
        for index in range(n_documents):
            for name, model in models.items():
                prefix = document("Instructions:", EXTRACTION_PREFIX, model)
                prompt = [*prefix, *document(f"Document {index}:", EXTRACTION_DOCUMENT + 1, model)[1:]]
                first_tokens[name].append(
                    asyncio.run(engine_stream(model, prompt, EXTRACTION_ANSWER)).first_token_s
                )
        for name, model in models.items():
            times = ", ".join(f"{t * 1000:.0f}" for t in first_tokens[name])
            restores = model.scheduler.checkpoint_restores if model.scheduler else 0
            print(
                f"extraction first token, {name:<22} ms per document: {times} (checkpoint restores {restores})"
            )
    finally:
        for model in models.values():
            model.close()


def fresh_prompt_speed(model: LoadedModel, repeats: int) -> float:
    labels = iter(range(10**6))
    return best(
        repeats,
        lambda: (
            PREFIX_TOKENS
            / engine_first_token(model, document(f"Report {next(labels)}:", PREFIX_TOKENS, model))
        ),
    )


def ubatch_sweep(path: Path, config: EngineConfig, repeats: int) -> None:
    print(f"\nprompt speed by n_ubatch ({PREFIX_TOKENS}-token prompts, engine)")
    for n_ubatch in UBATCH_SIZES:
        model = LoadedModel(path, "bench", replace(config, n_ubatch=n_ubatch))
        try:
            speed = fresh_prompt_speed(model, repeats)
        finally:
            model.close()
        print(f"  n_ubatch {n_ubatch:>4}: {speed:8.1f} tokens/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=0, help="0: one per physical core")
    parser.add_argument("--tokens", type=int, default=128, help="tokens per decode stream")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--ubatch-sweep", action="store_true", help=f"also time prompts at n_ubatch {UBATCH_SIZES}"
    )
    parser.add_argument(
        "--llama-server",
        type=Path,
        default=DEFAULT_LLAMA_SERVER,
        help="llama-server for the repeated-rounds rows (left out when the file is missing)",
    )
    parser.add_argument("--only-rounds", action="store_true", help="only the repeated-rounds rows")
    parser.add_argument(
        "--extraction",
        type=int,
        default=0,
        metavar="N",
        help="only: time to first token of N extraction requests (shared prefix, new document) on one slot",
    )
    args = parser.parse_args()
    if not args.model.exists():
        parser.error(
            f"{args.model} does not exist (run the Gemma tests once to assemble it, or pass --model)"
        )
    config = EngineConfig(n_slots=STREAMS, n_ctx_per_slot=2048, n_threads=args.threads)
    print(
        f"model {args.model.name}, {config.threads} threads, n_batch {config.n_batch}, n_ubatch {config.n_ubatch}"
    )
    print(f"load average before: {load_average()}")
    if args.extraction:
        extraction_first_tokens(args.model, config, args.extraction)
        print(f"load average after: {load_average()}")
        return
    if not args.only_rounds:
        compare(args.model, config, args.tokens, args.repeats)
    server = args.llama_server if args.llama_server.exists() else None
    repeated_rounds(args.model, config, args.tokens, server)
    if args.ubatch_sweep:
        ubatch_sweep(args.model, config, args.repeats)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
