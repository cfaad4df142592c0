"""The official JSON-Schema-Test-Suite, draft 2020-12 with optional/ included, against the committed baseline.

Each group's schema is compiled strictly (a refusal is counted, not a failure); each instance is written the
way the grammar writes JSON and must be accepted exactly when it is valid. A file fails when its passed count
drops below the baseline, or on any false accept (a strictly compiled grammar must never admit an invalid
instance). `python scripts/schema_suite_report.py --write` regenerates the baseline.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BASELINE_PATH = Path(__file__).with_name("schema_suite_baseline.json")
LLGUIDANCE_PASSED = 934


def _report_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "schema_suite_report", REPO_ROOT / "scripts" / "schema_suite_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("schema_suite_report", module)
    spec.loader.exec_module(module)
    return module


REPORT = _report_module()
BASELINE = json.loads(BASELINE_PATH.read_text(encoding="utf-8"))


def test_the_shared_suite_is_where_the_repository_expects_it() -> None:
    folder = REPORT.suite_dir()
    assert folder == REPO_ROOT.parent / "shared" / "json-schema-test-suite" / "draft2020-12"
    assert set(REPORT.suite_files()) == set(BASELINE["files"]), "suite files changed: regenerate the baseline"


@pytest.mark.parametrize("relative", sorted(BASELINE["files"]))
def test_suite_file_holds_its_baseline(relative: str) -> None:
    counts = REPORT.run_file(relative)
    expected = BASELINE["files"][relative]
    assert counts.false_accepts == 0, counts.false_accept_cases
    assert counts.passed >= expected["passed"], (counts.counts(), expected)


def test_baseline_beats_llguidance() -> None:
    totals = BASELINE["totals"]
    assert totals["false_accepts"] == 0
    assert totals["passed"] > LLGUIDANCE_PASSED
    assert sum(f["passed"] for f in BASELINE["files"].values()) == totals["passed"]
