"""The schema-corpus benchmark side by side: this checkout against a git revision, both at once, one core each.

Runs on this shared machine differ by up to 40% an hour apart, so a speed claim compares two versions run at
the same time. The revision is checked out in a temporary git worktree (its C extension built there, the
unpacked corpus shared), scripts/bench_schema_corpus.py runs in both trees at once, and this prints both
summaries, the ratios (revision / this checkout: above 1 is faster here) and the schemas whose outcome
differs. Give `uptime`'s load with any number you quote.

    .venv/bin/python scripts/compare_schema_corpus.py REV [--sample K] [--limit N] [--match TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_schema_corpus import percentile

REPO_ROOT = Path(__file__).resolve().parents[1]


def _bench(tree: Path, out: Path, passed: list[str]) -> subprocess.Popen[bytes]:
    """bench_schema_corpus.py started in `tree`, its summary and results going to `out` (.txt and .json)."""
    command = [sys.executable, str(tree / "scripts" / "bench_schema_corpus.py"), "--json", str(out), *passed]
    with open(out.with_suffix(".txt"), "wb") as log:
        return subprocess.Popen(command, cwd=tree, stdout=log, stderr=subprocess.STDOUT)


def _checkout(revision: str, where: Path) -> Path:
    """`revision` in a worktree under `where`, with its C extension built and the corpus cache shared."""
    tree = where / "tree"
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(tree), revision], check=True)
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tree, check=True, capture_output=True
    )
    (tree / ".cache").mkdir(exist_ok=True)
    (tree / ".cache" / "schema-corpus").symlink_to(REPO_ROOT / ".cache" / "schema-corpus")
    return tree


def _row(results: list[dict[str, Any]]) -> dict[str, float]:
    cpu = sorted(r["compile_cpu_seconds"] for r in results if r["outcome"] != "timeout")
    return {
        "p50": percentile(cpu, 0.5),
        "p90": percentile(cpu, 0.9),
        "p99": percentile(cpu, 0.99),
        "worst": max(cpu, default=0.0),
        "all": sum(cpu),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare this checkout against")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--match", default="")
    args = parser.parse_args()
    passed = [f"--limit={args.limit}", f"--sample={args.sample}", f"--match={args.match}"]
    with tempfile.TemporaryDirectory(prefix="compare-corpus-") as scratch:
        where = Path(scratch)
        tree = _checkout(args.revision, where)
        try:
            print(f"load before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
            runs = {"revision": _bench(tree, where / "revision.json", passed)}
            runs["this"] = _bench(REPO_ROOT, where / "this.json", passed)
            if any(run.wait() != 0 for run in runs.values()):
                print((where / "revision.txt").read_text(), (where / "this.txt").read_text())
                return 1
            results = {name: json.loads((where / f"{name}.json").read_text()) for name in runs}
            for name in runs:
                print(f"--- {args.revision if name == 'revision' else 'this checkout'}")
                print((where / f"{name}.txt").read_text().split("slowest")[0].rstrip())
        finally:
            subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    before, after = _row(results["revision"]), _row(results["this"])
    print("compile CPU, revision / this checkout: " + ", ".join(
        f"{key} {before[key] * 1e3:,.1f} / {after[key] * 1e3:,.1f} ms = {before[key] / max(after[key], 1e-9):.2f}x"
        for key in before
    ))
    outcomes = {r["name"]: r["outcome"] for r in results["revision"]}
    changed = [(r["name"], outcomes.get(r["name"]), r["outcome"]) for r in results["this"]
               if outcomes.get(r["name"]) != r["outcome"]]
    print(f"outcomes changed: {len(changed)}")
    for name, was, now in changed:
        print(f"  {name}: {was} -> {now}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
