"""llama.cpp under the server. Importing this package first sets how llama.cpp's OpenMP threads wait for each
other, which OpenMP reads once, when llama.cpp's libraries load.

llama.cpp's threads meet at a barrier after every operation (hundreds per token). GCC's libgomp lets a thread
spin 300,000 times there before it sleeps: when another process takes the core a partner thread needs, the
spinning thread burns its own core instead of lending it, and a 2-thread decode beside one busy core ran at a
tenth of the speed of 1 thread (scripts/bench_contention.py). A short spin keeps the idle speed and lets go of
the core under contention. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept.
"""

from __future__ import annotations

import logging
import os
import sys

OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": "1000"}
"""Spins at a barrier before sleeping (about 50 microseconds here; libgomp's default is 300,000)."""

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    if "llama_cpp" in sys.modules:
        logging.getLogger(__name__).warning(
            "llama_cpp was imported before edge_runtime.engine: OpenMP keeps its default spin-wait, and "
            "decoding slows down sharply whenever another process uses the CPU"
        )
    os.environ.update(OPENMP_DEFAULTS)
