"""The cycle collector paused while grammars compile, so that compiling never stops the other threads.

A compile allocates hundreds of thousands of objects (parse trees, rule lists) that live until it returns and
form no reference cycles. While they live, allocation counts trigger collections, and a full one scans every
object of the process with the GIL held (0.7 s seen on a loaded machine): every stream on the server stops
meanwhile. Paused, the compile's objects are freed by reference counting when it returns, and collection
resumes with nothing new to scan. Overlapping compiles share one pause; a collector someone else disabled is
left disabled.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pausing = 0
"""Compiles running inside `collector_paused` (any thread)."""
_resume = False
"""Whether the collector was enabled when the first of them began (and is to be enabled after the last)."""


@contextmanager
def collector_paused() -> Iterator[None]:
    global _pausing, _resume
    with _lock:
        if _pausing == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pausing += 1
    try:
        yield
    finally:
        with _lock:
            _pausing -= 1
            if _pausing == 0 and _resume:
                gc.enable()
