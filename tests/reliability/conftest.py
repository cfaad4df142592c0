"""Process-level tests: real `serve` subprocesses and real imports. They reuse tests/server's live-server
helpers, so that folder goes on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

SERVER_TESTS = Path(__file__).resolve().parent.parent / "server"
if str(SERVER_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVER_TESTS))
