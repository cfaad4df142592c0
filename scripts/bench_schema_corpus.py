"""Compile time and pass rate of the JSON Schema compiler on the shared real-world corpus (schema_corpus.py).

One worker process (one core) compiles each schema strictly and matches its instances, under a per-schema time
limit. Prints compile time percentiles (CPU time of the compile call; wall time beside it), the pass rate,
false accepts, the slowest schemas with their source, and refusals by keyword. Give `uptime`'s load with any
number you quote: the machine is shared.

`--server-mode` times the compile the server does for generation instead (objects without additionalProperties
closed, `closed_objects`) and matches no instances: its "pass" is "compiled", and its pass rate says nothing
of correctness (the instances assume JSON Schema's open objects).

    .venv/bin/python scripts/bench_schema_corpus.py [--limit N] [--sample K] [--timeout S] [--json out.json]
                                                    [--server-mode]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from schema_corpus import CaseResult, Outcome, case_names, run_isolated, sample_names


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(share * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def summary(results: list[CaseResult], slowest: int = 20, server_mode: bool = False) -> str:
    compiled = [r for r in results if r.outcome is not Outcome.TIMEOUT]
    cpu = sorted(r.compile_cpu_seconds for r in compiled)
    wall = sorted(r.compile_seconds for r in compiled)
    counts = Counter(r.outcome for r in results)
    n = len(results)
    lines = [f"schemas: {n}  (load: {_load()})"]
    if server_mode:  # compiled or not: nothing was matched
        lines.append(
            f"server mode (closed objects, compile only): compiled {counts[Outcome.PASSED]}, refused "
            f"{counts[Outcome.REFUSED]}, timeout {counts[Outcome.TIMEOUT]}, crashed {counts[Outcome.CRASHED]}"
        )
    else:
        lines.append(
            "outcomes: "
            + ", ".join(f"{outcome.value} {counts[outcome]}" for outcome in Outcome)
            + f"; pass rate {counts[Outcome.PASSED] / max(1, n):.1%}"
        )
    for label, values in (("compile cpu", cpu), ("compile wall", wall)):
        lines.append(
            f"{label}: p50 {percentile(values, 0.5) * 1e3:.1f} ms, "
            f"p90 {percentile(values, 0.9) * 1e3:.1f} ms, "
            f"p99 {percentile(values, 0.99) * 1e3:.1f} ms, worst {max(values, default=0.0) * 1e3:.0f} ms; "
            f"over 1 s: {sum(v > 1 for v in values)}, over 50 ms: {sum(v > 0.05 for v in values)}"
        )
    timeouts = [r.name for r in results if r.outcome is Outcome.TIMEOUT]
    if timeouts:
        lines.append(f"timeouts ({len(timeouts)}): {', '.join(timeouts[:20])}")
    checks = sorted(r.check_seconds for r in compiled)
    if not server_mode:
        lines.append(
            f"instance checks (wall, all instances of a schema): p50 {percentile(checks, 0.5) * 1e3:.1f} ms, "
            f"p99 {percentile(checks, 0.99) * 1e3:.1f} ms, worst {max(checks, default=0.0) * 1e3:.0f} ms"
        )
    lines.append(f"slowest {slowest} (compile cpu ms, wall ms, outcome, source, name):")
    for r in sorted(results, key=lambda r: -max(r.compile_cpu_seconds, r.compile_seconds))[:slowest]:
        lines.append(
            f"  {r.compile_cpu_seconds * 1e3:9.1f} {r.compile_seconds * 1e3:9.1f}  {r.outcome.value:12} "
            f"{r.source:18} {r.name}"
        )
    for outcome in (Outcome.FALSE_ACCEPT, Outcome.CRASHED):
        for r in results:
            if r.outcome is outcome:
                lines.append(f"{outcome.value}: {r.name}: {r.reason}")
    reasons = Counter(r.reason for r in results if r.outcome is Outcome.REFUSED)
    lines.append(
        "refusals by reason: " + ", ".join(f"{reason} {count}" for reason, count in reasons.most_common())
    )
    return "\n".join(lines)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="only the first N schemas (by name)")
    parser.add_argument("--sample", type=int, default=0, help="only the first K schemas of each source")
    parser.add_argument("--match", default="", help="only schemas whose name contains this")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per schema (compile and checks)")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--progress", action="store_true", help="print each result as it comes")
    parser.add_argument(
        "--server-mode",
        action="store_true",
        help="time the server's compile for generation (closed objects) alone; instances are not matched",
    )
    args = parser.parse_args()
    names = sample_names(args.sample) if args.sample else case_names()
    names = [name for name in names if args.match in name]
    if args.limit:
        names = names[: args.limit]
    results = []
    for result in run_isolated(names, args.timeout, server_mode=args.server_mode):
        results.append(result)
        if args.progress:
            print(
                f"{len(results)} {result.compile_cpu_seconds * 1e3:.1f} ms {result.outcome.value} "
                f"{result.name}",
                flush=True,
            )
    print(summary(results, server_mode=args.server_mode))
    if args.json:
        rows = [{**asdict(r), "outcome": r.outcome.value, "source": r.source} for r in results]
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
