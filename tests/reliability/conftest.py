"""Process-level tests: real `edge-runtime serve` subprocesses (several on one store, signalled, starved of
disk, their files truncated) and real imports. tests/server's helpers (live_server: free ports, the tiny
model's id) are shared from there, so that folder goes on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

SERVER_TESTS = Path(__file__).resolve().parent.parent / "server"
if str(SERVER_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVER_TESTS))
