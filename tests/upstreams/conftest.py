"""Remote models against real upstreams on loopback (see upstream_processes.py). tests/server's helpers (a live
edge-runtime in a thread) are shared from there."""

from __future__ import annotations

import sys
from pathlib import Path

SERVER_TESTS = Path(__file__).resolve().parent.parent / "server"
if str(SERVER_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVER_TESTS))
