"""Run the official JSON-Schema-Test-Suite (draft 2020-12, optional/ included) through the JSON Schema
compiler and print per-file counts; `--write` regenerates tests/grammar/schema_suite_baseline.json.

Each group's schema is compiled in strict mode (a refusal is counted, not a failure); each instance is
serialized the way the grammar writes JSON (", " and ": ", non-ASCII kept) and `Grammar.matches` is compared
with `valid`. The suite lives in the shared folder beside the repository (../shared/json-schema-test-suite);
its remotes/ serve the `$ref`s to http://localhost:1234/ from disk.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SUITE_DIR = REPO_ROOT.parent / "shared" / "json-schema-test-suite"
DRAFT = "draft2020-12"
BASELINE = REPO_ROOT / "tests" / "grammar" / "schema_suite_baseline.json"
REMOTE_PREFIX = "http://localhost:1234/"
LLGUIDANCE_PASSED = 934

sys.path.insert(0, str(REPO_ROOT))

from edge_runtime.grammar import GrammarError
from edge_runtime.grammar.json_schema import compile_json_schema, json_text


@dataclass
class FileCounts:
    compiled: int = 0
    refused: int = 0
    passed: int = 0
    false_accepts: int = 0
    false_rejects: int = 0
    false_accept_cases: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        data = asdict(self)
        data.pop("false_accept_cases")
        return data


def suite_dir() -> Path:
    """The draft's folder in the shared suite, or a clear error when the shared folder is not there."""
    folder = SUITE_DIR / DRAFT
    if not folder.is_dir():
        raise FileNotFoundError(
            f"the JSON-Schema-Test-Suite is expected at {SUITE_DIR} (the shared folder beside the repository)"
        )
    return folder


def suite_files() -> list[str]:
    """Suite files relative to the draft folder, optional/ included."""
    root = suite_dir()
    return sorted(str(path.relative_to(root)) for path in root.rglob("*.json"))


def remote_document(uri: str) -> Any:
    """The suite's remote documents, from disk."""
    if not uri.startswith(REMOTE_PREFIX):
        raise LookupError(f"{uri} is not one of the suite's remotes")
    path = (SUITE_DIR / "remotes" / uri[len(REMOTE_PREFIX) :]).resolve()
    if not path.is_file() or SUITE_DIR.resolve() not in path.parents:
        raise LookupError(f"{uri} is not one of the suite's remotes")
    return json.loads(path.read_text(encoding="utf-8"))


def run_file(relative: str) -> FileCounts:
    counts = FileCounts()
    groups = json.loads((suite_dir() / relative).read_text(encoding="utf-8"))
    for group in groups:
        try:
            grammar = compile_json_schema(group["schema"], resolver=remote_document)
        except GrammarError:
            counts.refused += 1
            continue
        counts.compiled += 1
        for case in group["tests"]:
            accepted = grammar.matches(json_text(case["data"]))
            if accepted == case["valid"]:
                counts.passed += 1
            elif accepted:
                counts.false_accepts += 1
                counts.false_accept_cases.append(f"{group['description']} / {case['description']}")
            else:
                counts.false_rejects += 1
    return counts


def run_suite() -> dict[str, FileCounts]:
    return {relative: run_file(relative) for relative in suite_files()}


def totals(results: dict[str, FileCounts]) -> dict[str, int]:
    summed: dict[str, int] = {}
    for counts in results.values():
        for key, value in counts.counts().items():
            summed[key] = summed.get(key, 0) + value
    return summed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write the baseline to {BASELINE}")
    args = parser.parse_args()
    results = run_suite()
    for relative, counts in results.items():
        row = counts.counts()
        print(f"{relative:45} " + " ".join(f"{k}={v}" for k, v in row.items()))
        for case in counts.false_accept_cases:
            print(f"    false accept: {case}")
    total = totals(results)
    instances = total["passed"] + total["false_accepts"] + total["false_rejects"]
    print(f"total: {total}")
    print(
        f"instances passed: {total['passed']} (of {instances} in compiled groups; "
        f"llguidance passes {LLGUIDANCE_PASSED} of 1,897)"
    )
    if args.write:
        baseline = {
            "draft": DRAFT,
            "optional_included": True,
            "totals": total,
            "files": {relative: counts.counts() for relative, counts in results.items()},
        }
        BASELINE.write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {BASELINE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
