"""Process-level tests: real `edge-runtime serve` subprocesses, several on one store, faults from the kernel.

tests/server's helpers (live_server: free ports, the tiny model's id) are shared from there.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))
