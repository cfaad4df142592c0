"""Stopping with a last word for every request: when the shutdown grace runs out, the generations still running
or queued are failed with ShuttingDown, so each request ends in its family's shape (a 503 JSON error, or an
error event ending its stream) before uvicorn cancels what is left.

uvicorn only cancels request tasks (a cut stream, or its own text/plain 500): it has no hook for "the grace is
over". So the app is told when the stop starts (the signal handler, through `GracefulServer`), keeps its own
grace timer, and uvicorn's timeout is set a little longer (`uvicorn_grace_s`) to let those last words out.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn

from edge_runtime.errors import ShuttingDown

log = logging.getLogger("edge_runtime.server")

LAST_WORD_S = 3.0
"""How long requests cut at the end of the grace get to send their error before uvicorn cancels them."""


def uvicorn_grace_s(grace_s: float) -> int:
    """uvicorn's own timeout (whole seconds): the grace, then the last word."""
    return math.ceil(grace_s + LAST_WORD_S)


class ShutdownGrace:
    """Arms at the stop signal; `grace_s` later fails every generation of every loaded model. `begin` may be
    called from a signal handler (it only schedules work on the server's loop)."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fail_all: Callable[[ShuttingDown], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def attach(self, fail_all: Callable[[ShuttingDown], None]) -> None:
        """Called by the app's lifespan, on the server's loop, with what fails every running generation."""
        self._loop = asyncio.get_running_loop()
        self._fail_all = fail_all

    def detach(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._loop = self._fail_all = self._timer = None

    def begin(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        if self._timer is None and self._loop is not None:
            log.info("stopping: running requests have %.3g s to finish", self.grace_s)
            self._timer = self._loop.call_later(self.grace_s, self._expire)

    def _expire(self) -> None:
        if self._fail_all is not None:
            log.warning("shutdown grace of %.3g s is over: cutting the requests still running", self.grace_s)
            self._fail_all(ShuttingDown("the server is shutting down; retry the request"))


class GracefulServer(uvicorn.Server):
    """uvicorn's server, telling the app's ShutdownGrace when a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, grace: ShutdownGrace) -> None:
        super().__init__(config)
        self._grace = grace

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._grace.begin()
        super().handle_exit(sig, frame)


@contextmanager
def stop_signals_exit_zero() -> Iterator[None]:
    """uvicorn re-raises the stop signal once its graceful shutdown is done, which would kill the process with it;
    a stop the operator asked for, carried out, is a success: exit 0."""
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda _sig, _frame: None) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
