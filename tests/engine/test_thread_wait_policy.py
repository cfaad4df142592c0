"""llama.cpp's OpenMP threads spin only briefly at their barriers, so a decode lends its cores to other work
instead of burning them while a partner thread waits to be scheduled (scripts/bench_contention.py measures
what that is worth); a user's own OpenMP setting is kept."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from edge_runtime.engine import OPENMP_DEFAULTS

LIBGOMP_DEFAULT_SPIN = 300_000


def openmp_spin_count(**env: str) -> int:
    """The spin count libgomp itself reports when llama.cpp's libraries load in a fresh process."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    result = subprocess.run(
        [sys.executable, "-c", "import edge_runtime.engine.llama_handles"],
        env={**clean, "OMP_DISPLAY_ENV": "verbose", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = re.search(r"GOMP_SPINCOUNT = '(\d+)'", result.stderr)
    if found is None:
        pytest.skip("this llama.cpp build does not use GCC's OpenMP")
    return int(found.group(1))


def test_llama_cpp_threads_spin_briefly_at_barriers() -> None:
    spins = openmp_spin_count()
    assert spins == int(OPENMP_DEFAULTS["GOMP_SPINCOUNT"])
    assert spins * 100 <= LIBGOMP_DEFAULT_SPIN


def test_a_users_own_openmp_setting_is_kept() -> None:
    assert openmp_spin_count(GOMP_SPINCOUNT="5000") == 5000
