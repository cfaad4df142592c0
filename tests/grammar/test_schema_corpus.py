"""A fixed sample of the shared real-world schema corpus (scripts/schema_corpus.py, MaskBench's scoring), so a
coverage regression or a false accept shows in CI.

The sample (schema_corpus_sample.txt) holds a few hundred names chosen by source; each schema compiles strictly
in a worker process with a time limit and its instances are matched in schema key order. No false accept is
allowed anywhere, and the pass count must stay at or above the floor the file records.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).with_name("schema_corpus_sample.txt")
TIMEOUT_SECONDS = 60.0
"""Per schema: the sample's compiles take milliseconds idle; the limit only stops a hang."""


def _corpus_module() -> ModuleType:
    """scripts/schema_corpus.py, imported by its own name with scripts/ on sys.path: its worker processes
    (spawned) import it again by that name."""
    scripts = str(REPO_ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    return importlib.import_module("schema_corpus")


CORPUS = _corpus_module()


def _sample() -> tuple[list[str], int]:
    """The sample's names and its pass floor (the `# floor: N` line)."""
    names, floor = [], -1
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("# floor:"):
            floor = int(line.split(":", 1)[1])
        elif line and not line.startswith("#"):
            names.append(line)
    return names, floor


def test_the_sample_names_corpus_schemas_of_every_source() -> None:
    names, floor = _sample()
    assert 200 <= len(names) <= 500 and len(set(names)) == len(names)
    assert set(names) <= set(CORPUS.case_names())
    sources = {CORPUS.source_of(name) for name in names}
    assert len(sources) >= 20  # of the corpus's 21 (Github_ultra's schemas all compile too slowly for CI)
    assert 0 < floor <= len(names)


def test_sample_passes_at_least_its_floor_with_no_false_accept() -> None:
    names, floor = _sample()
    results = list(CORPUS.run_isolated(names, TIMEOUT_SECONDS))
    assert [r.name for r in results] == names
    false_accepts = [f"{r.name}: {r.reason}" for r in results if r.outcome is CORPUS.Outcome.FALSE_ACCEPT]
    assert false_accepts == []
    crashed = [f"{r.name}: {r.reason}" for r in results if r.outcome is CORPUS.Outcome.CRASHED]
    assert crashed == []
    failing = sorted(
        f"{r.name}: {r.outcome.value} {r.reason}" for r in results if r.outcome is not CORPUS.Outcome.PASSED
    )
    passed = len(names) - len(failing)
    assert passed >= floor, "\n".join(failing)
