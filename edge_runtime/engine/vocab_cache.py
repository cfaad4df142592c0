"""The grammar index of a model's vocabulary, cached on disk beside the model file.

Built once per cache file even when many requests (or processes) ask at once: an in-process lock per path
and an flock across processes make one caller build while the others wait and read what it wrote. A cache
that fails its size or sha256 check is rebuilt (one log line) instead of failing every grammar request.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from edge_runtime.grammar import Vocabulary

log = logging.getLogger(__name__)

_path_locks: dict[Path, threading.Lock] = {}
_path_locks_guard = threading.Lock()


def load_or_build(cache_file: Path, build: Callable[[], Vocabulary]) -> Vocabulary:
    """The vocabulary cached in `cache_file`, or `build()`'s, written there for the next caller."""
    with _thread_lock(cache_file), _process_lock(cache_file):
        if cache_file.exists():
            try:
                return Vocabulary.load(cache_file)
            except (ValueError, OSError) as error:
                log.warning("rebuilding the vocabulary index: %s", error)
        started = time.perf_counter()
        vocabulary = build()
        try:
            vocabulary.save(cache_file)
        except OSError as error:
            log.warning("could not cache the vocabulary index in %s: %s", cache_file.parent, error)
        log.info(
            "built the vocabulary index of %d tokens in %.2f s (%s)",
            len(vocabulary),
            time.perf_counter() - started,
            cache_file.name,
        )
        return vocabulary


def _thread_lock(cache_file: Path) -> threading.Lock:
    with _path_locks_guard:
        return _path_locks.setdefault(cache_file.resolve(), threading.Lock())


@contextmanager
def _process_lock(cache_file: Path) -> Iterator[None]:
    """An flock on `<cache>.lock`, released when the file closes (the file is kept: deleting a lock file lets
    two holders in)."""
    with ExitStack() as stack:
        try:
            lock_file = stack.enter_context(open(cache_file.with_name(cache_file.name + ".lock"), "a"))
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        except OSError as error:  # a folder we cannot write: nothing gets cached there either
            log.debug("building the vocabulary index without the cross-process lock: %s", error)
        yield
