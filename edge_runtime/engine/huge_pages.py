"""Move a loaded model's resident memory onto transparent huge pages (Linux `MADV_COLLAPSE`).

Why: a decode reads every weight and the cache it attends over. On 4 KiB pages that is one page-table entry
per 4 KiB, and after the process has rested (another program ran, or the host took the cores back) every entry
is walked again: on a 2-core VM, touching 256 MiB once per page cost 424 ms after 8 s of rest against 48 ms on
2 MiB pages, and SmolLM2's re-read of one prompt token after 8 s of rest 264-280 ms against 92-95 ms (16 ms
back to back). Only chunks whose every page is already resident are collapsed, so the resident size does not
grow.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

log = logging.getLogger(__name__)
MADV_COLLAPSE = 25
"""Linux 6.1+: make the range's pages one huge page now, in the calling thread (khugepaged does it lazily)."""
THP_SYSFS = Path("/sys/kernel/mm/transparent_hugepage")
PAGE = mmap.PAGESIZE


def huge_page_size() -> int | None:
    """The PMD huge page size when transparent huge pages may be used; None when the kernel has none or they
    are switched off (`never`), which an administrator's choice this pass respects."""
    try:
        enabled = (THP_SYSFS / "enabled").read_text()
        size = int((THP_SYSFS / "hpage_pmd_size").read_text())
    except (OSError, ValueError):
        return None
    return None if "[never]" in enabled or size <= PAGE else size


def private_writable_ranges(min_bytes: int, maps: Path = Path("/proc/self/maps")) -> list[tuple[int, int]]:
    """This process's private anonymous writable mappings (heap, malloc'd weights and caches) of min_bytes or
    more: file mappings stay in the page cache the kernel shares and may drop."""
    ranges = []
    for line in maps.read_text().splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[1] != "rw-p" or fields[4] != "0":
            continue
        if len(fields) > 5 and fields[5] != "[heap]":
            continue
        start, end = (int(value, 16) for value in fields[0].split("-"))
        if end - start >= min_bytes:
            ranges.append((start, end))
    return ranges


def c_library() -> ctypes.CDLL:
    """The process's own C library, with the signatures of the two calls a pass makes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    return libc


class HugePages:
    """The kernel's huge pages as this process may use them: `open()` gives None when it has none, or cannot
    collapse a chunk on request (MADV_COLLAPSE came in Linux 6.1)."""

    def __init__(self, size: int, libc: ctypes.CDLL) -> None:
        self.size = size
        self._libc = libc
        self._residency = (ctypes.c_ubyte * (size // PAGE))()

    @classmethod
    def open(cls) -> HugePages | None:
        size = huge_page_size()
        if size is None:
            return None
        libc = c_library()
        probe = mmap.mmap(-1, 2 * size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        anchor = ctypes.c_char.from_buffer(probe)
        chunk = -(-ctypes.addressof(anchor) // size) * size
        offset = chunk - ctypes.addressof(anchor)
        probe[offset : offset + size] = bytes([1]) * size
        collapsible = libc.madvise(chunk, size, MADV_COLLAPSE) == 0
        del anchor
        probe.close()
        return cls(size, libc) if collapsible else None

    def chunks(self, ranges: list[tuple[int, int]]) -> list[int]:
        """The huge-page-aligned chunks lying wholly inside the ranges."""
        size = self.size
        aligned = [(-(-start // size) * size, end) for start, end in ranges]
        return [chunk for start, end in aligned for chunk in range(start, end - size + 1, size)]

    def collapse(self, chunk: int) -> bool | None:
        """Collapse one chunk if every page of it is resident. True: it is one huge page now (or was); False:
        the kernel refused (no MADV_COLLAPSE before Linux 6.1, or a range marked no-huge-page); None: not
        wholly resident (or no longer mapped), left alone so the resident size does not grow."""
        if self._libc.mincore(chunk, self.size, self._residency) != 0 or not all(
            byte & 1 for byte in self._residency
        ):
            return None
        return self._libc.madvise(chunk, self.size, MADV_COLLAPSE) == 0


QUIET_S = 1.0
"""How long a scheduler waits with nothing to do before it works on the pass."""
PASS_INTERVAL_S = 10.0
"""Least time between the starts of two passes: a pass that finds nothing new still reads every chunk's
residency (11 ms over Gemma 3 270M's 470 MiB)."""


class Busy(Protocol):
    @property
    def busy(self) -> bool: ...


class IdleCollapse:
    """Collapses this process's memory one chunk at a time while the process is idle, so a request that
    arrives waits for one chunk at most (2 MiB, a few milliseconds); the next idle spell resumes the pass.
    Passes start at most every `interval_s`, to catch what was touched since (a first decode's compute
    buffer, a new model). The pass covers the whole process, so it also stops while any watched model is
    busy: an idle model's scheduler must not copy memory under another model's decode."""

    def __init__(
        self,
        ranges: Callable[[int], list[tuple[int, int]]] = private_writable_ranges,
        interval_s: float = PASS_INTERVAL_S,
    ) -> None:
        self._ranges = ranges
        """The mappings a pass covers, given the least size worth walking (two huge pages)."""
        self._interval_s = interval_s
        self._pages: HugePages | None | Literal[False] = False
        """False until the first run opens them."""
        self._lock = threading.Lock()
        self._watched: weakref.WeakSet[Busy] = weakref.WeakSet()
        self._watched_lock = threading.Lock()
        self._todo: list[int] = []
        self._next_pass = 0.0
        self.passes = 0
        self.collapsed_chunks = 0
        self.refused_chunks = 0

    @property
    def pending_chunks(self) -> int:
        return len(self._todo)

    def watch(self, model: Busy) -> None:
        with self._watched_lock:
            self._watched.add(model)

    def forget(self, model: Busy) -> None:
        with self._watched_lock:
            self._watched.discard(model)

    def anyone_busy(self) -> bool:
        with self._watched_lock:
            watched = list(self._watched)
        return any(model.busy for model in watched)

    def due(self) -> bool:
        """Whether run_while would have work: a pass under way, or time for the next (unless the kernel has
        been found to have no huge pages for this process)."""
        return self._pages is not None and bool(self._todo or time.monotonic() >= self._next_pass)

    def run_when_quiet(self, wake: threading.Condition, busy: Callable[[], bool]) -> None:
        """For a scheduler thread with nothing to do: wait up to QUIET_S on its condition for busy() (new
        work, or stopping), then work on the pass until busy() or a watched model is busy. The gaps inside a
        burst of requests are left alone, and so is a model unloaded right after its last request."""
        if not self.due():
            return
        with wake:
            wake.wait_for(busy, timeout=QUIET_S)
        try:
            self.run_while(lambda: not busy() and not self.anyone_busy())
        except Exception:  # the scheduler thread that drives the pass must outlive it
            log.exception("the huge-page pass failed; it is off for the rest of the process")
            self._pages = None

    def run_while(self, idle: Callable[[], bool]) -> None:
        """Work through the current pass (or start one, if it is time) for as long as idle() holds. Returns at
        once when another thread is running the pass."""
        if self._pages is None or not self._lock.acquire(blocking=False):
            return
        try:
            if self._pages is False:
                self._pages = HugePages.open()
            if self._pages is None:
                return
            if not self._todo:
                if time.monotonic() < self._next_pass or not idle():
                    return
                self._next_pass = time.monotonic() + self._interval_s
                self._todo = self._pages.chunks(self._ranges(2 * self._pages.size))[::-1]
                self.passes += 1
            while self._todo and idle():
                collapsed = self._pages.collapse(self._todo.pop())
                self.collapsed_chunks += collapsed is True
                self.refused_chunks += collapsed is False
        finally:
            self._lock.release()


IDLE_COLLAPSE = IdleCollapse()
"""The process's one pass: every generating model's scheduler thread drives it while it has nothing to do."""


def huge_page_bytes(rollup: Path = Path("/proc/self/smaps_rollup")) -> int:
    """This process's anonymous memory on huge pages now (0 where the kernel does not say)."""
    try:
        for line in rollup.read_text().splitlines():
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
