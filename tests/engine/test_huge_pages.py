"""The huge-page pass (engine/huge_pages.py) on memory of the test's own: what it may collapse (only chunks
whose every page is resident, so the resident size never grows), and how the idle pass stops and resumes."""

from __future__ import annotations

import ctypes
import mmap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_runtime.engine.huge_pages import (
    PAGE,
    HugePages,
    IdleCollapse,
    c_library,
    private_writable_ranges,
)

MAPS = """\
55d0a0000000-55d0a4000000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000800000 rw-p 00000000 00:00 0
7f0000800000-7f0000810000 rw-p 00000000 00:00 0
7f0001000000-7f0002000000 r--p 00000000 00:00 0
7f0002000000-7f0003000000 rw-p 00001000 fe:00 1234                       /models/weights.gguf
7f0003000000-7f0004000000 rw-s 00000000 00:01 77                         /dev/zero (deleted)
7ffc00000000-7ffc01000000 rw-p 00000000 00:00 0                          [stack]
"""


def test_only_private_anonymous_writable_mappings_are_walked(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text(MAPS)
    heap, anonymous = (0x55D0A0000000, 0x55D0A4000000), (0x7F0000000000, 0x7F0000800000)
    assert private_writable_ranges(4 << 20, maps) == [heap, anonymous]


def _libc() -> ctypes.CDLL:
    libc = c_library()
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


class Chunks:
    """Three huge-page-aligned chunks of a private anonymous mapping: the first written whole, the second on
    every other page, the third never. An inaccessible page on either side keeps them a mapping of their
    own."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.map = mmap.mmap(-1, 5 * size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._anchor = ctypes.c_char.from_buffer(self.map)
        base = ctypes.addressof(self._anchor)
        self.start = -(-(base + PAGE) // size) * size
        for guard in (self.start - PAGE, self.start + 3 * size):
            assert _libc().mprotect(guard, PAGE, 0) == 0  # PROT_NONE
        offset = self.start - base
        for page in range(0, size, PAGE):
            self.map[offset + page] = 1
        for page in range(0, size, 2 * PAGE):
            self.map[offset + size + page] = 1

    @property
    def range(self) -> tuple[int, int]:
        return self.start, self.start + 3 * self.size

    def resident_pages(self) -> int:
        vector = (ctypes.c_ubyte * (3 * self.size // PAGE))()
        assert _libc().mincore(self.start, 3 * self.size, vector) == 0
        return sum(byte & 1 for byte in vector)

    def huge_kib(self) -> int:
        """AnonHugePages of the chunks' mapping."""
        lines = Path("/proc/self/smaps").read_text().splitlines()
        for index, line in enumerate(lines):
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                low, high = (int(value, 16) for value in fields[0].split("-"))
                if (low, high) == self.range:
                    for detail in lines[index + 1 :]:
                        if detail.startswith("AnonHugePages:"):
                            return int(detail.split()[1])
        raise AssertionError("the test's mapping is not in /proc/self/smaps")

    def close(self) -> None:
        del self._anchor
        self.map.close()


@pytest.fixture
def chunks() -> Iterator[Chunks]:
    """Skips where the kernel cannot collapse a chunk on request (no transparent huge pages, set to never, or
    before Linux 6.1), or puts pages on huge pages from the first write (THP set to always)."""
    pages = HugePages.open()
    if pages is None:
        pytest.skip("no transparent huge pages, set to never, or no MADV_COLLAPSE (Linux 6.1+)")
    made = Chunks(pages.size)
    try:
        if made.resident_pages() != (pages.size // PAGE) * 3 // 2:
            pytest.skip("the kernel backed the first writes with huge pages already (THP set to always)")
        yield made
    finally:
        made.close()


def test_a_pass_collapses_only_wholly_resident_chunks(chunks: Chunks) -> None:
    resident = chunks.resident_pages()
    keeper = IdleCollapse(ranges=lambda size: [chunks.range], interval_s=3600.0)
    keeper.run_while(lambda: True)
    assert keeper.collapsed_chunks == 1 and keeper.refused_chunks == 0
    assert chunks.huge_kib() * 1024 == chunks.size
    assert chunks.resident_pages() == resident, "a half-written chunk was filled in"


def test_the_idle_pass_stops_when_work_arrives_and_resumes_after(chunks: Chunks) -> None:
    keeper = IdleCollapse(ranges=lambda min_bytes: [chunks.range], interval_s=3600.0)
    answers = iter([True, True, False])
    keeper.run_while(lambda: next(answers))
    assert keeper.passes == 1 and keeper.collapsed_chunks == 1 and keeper.pending_chunks == 2
    keeper.run_while(lambda: True)
    assert keeper.passes == 1 and keeper.collapsed_chunks == 1 and keeper.pending_chunks == 0
    keeper.run_while(lambda: True)
    assert keeper.passes == 1, "a pass started before its interval"
    assert chunks.huge_kib() * 1024 == chunks.size


def test_a_busy_caller_starts_no_pass() -> None:
    keeper = IdleCollapse(ranges=lambda size: pytest.fail("a busy caller read the mappings"), interval_s=0.0)
    keeper.run_while(lambda: False)
    assert keeper.passes == 0


def test_a_scheduler_thread_works_on_the_pass_only_once_it_has_been_quiet(chunks: Chunks) -> None:
    keeper = IdleCollapse(ranges=lambda min_bytes: [chunks.range], interval_s=3600.0)
    wake = threading.Condition()
    keeper.run_when_quiet(wake, lambda: True)
    assert keeper.passes == 0, "a pass started while work was waiting"
    keeper.run_when_quiet(wake, lambda: False)
    assert keeper.passes == 1 and keeper.pending_chunks == 0 and keeper.collapsed_chunks == 1
    assert not keeper.due()


class Model:
    busy = False


def test_the_pass_pauses_while_any_watched_model_is_busy(chunks: Chunks) -> None:
    keeper = IdleCollapse(ranges=lambda min_bytes: [chunks.range], interval_s=3600.0)
    other = Model()
    keeper.watch(other)
    other.busy = True
    keeper.run_when_quiet(threading.Condition(), lambda: False)
    assert keeper.passes == 0 and keeper.collapsed_chunks == 0
    other.busy = False
    keeper.run_when_quiet(threading.Condition(), lambda: False)
    assert keeper.passes == 1 and keeper.pending_chunks == 0 and keeper.collapsed_chunks == 1
    keeper.forget(other)
    other.busy = True
    assert not keeper.anyone_busy()


def test_a_failing_pass_turns_itself_off_instead_of_raising_into_the_scheduler(chunks: Chunks) -> None:
    def unreadable(min_bytes: int) -> list[tuple[int, int]]:
        raise OSError("/proc/self/maps is unreadable")

    keeper = IdleCollapse(ranges=unreadable, interval_s=0.0)
    keeper.run_when_quiet(threading.Condition(), lambda: False)
    assert not keeper.due() and keeper.passes == 0
