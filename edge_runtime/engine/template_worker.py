"""The server's side of chat-template rendering: a few sandbox processes (template_sandbox.py), each killed
when a render passes its deadline.

Why processes: a template from a model file can loop for billions of steps or build gigabyte strings, and a
thread in the server can be neither stopped nor limited in memory. Jinja2's sandbox hooks can cap some
operators, but not every path to a big string or a long loop (filters, `~` joins, macro recursion), and
nothing stops a C-level allocation once it has started. A child process gets a hard address-space limit
and can be killed: the bound holds whatever the template does. The cost is a pipe round trip per render
(templates are compiled once per process and kept), and 21 MiB of RSS per process (measured).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

from edge_runtime.engine.template_sandbox import FRAME_HEADER, ChatTemplateError, frame

RENDER_CPU_BUDGET_S = 2.0
"""A render that has used this much CPU is stopped (its process killed): normal ones take milliseconds. CPU
time, not wall time, so that a busy machine does not fail honest renders."""
RENDER_WALL_LIMIT_S = 30.0
"""The backstop where the CPU time cannot be read (no /proc), or the process is starved."""
STARTUP_LIMIT_S = 60.0
"""A new render process (a Python start and a jinja2 import) must report ready within this."""
POLL_S = 0.05
RENDER_PROCESSES = 2
"""Renders at once; more wait for a process (a hostile template holds one for at most RENDER_TIMEOUT_S)."""
READ_CHUNK_BYTES = 1 << 20

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """The render process did not answer: it passed its budget (`timed_out`) or exited."""

    def __init__(self, timed_out: bool) -> None:
        self.timed_out = timed_out


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process, from /proc (None where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class _RenderProcess:
    """One `python -m edge_runtime.engine.template_sandbox`, used by one render at a time."""

    def __init__(self) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "edge_runtime.engine.template_sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._ready = False

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def ask(self, payload: bytes, cpu_budget_s: float) -> dict[str, Any]:
        """Send one request and wait for its reply while the process stays within its CPU budget."""
        assert self.popen.stdin is not None
        if not self._ready:
            self._read_frame(time.monotonic() + STARTUP_LIMIT_S, None)
            self._ready = True
        cpu_limit = _cpu_seconds(self.popen.pid)
        if cpu_limit is not None:
            cpu_limit += cpu_budget_s
        try:
            self.popen.stdin.write(frame(payload))
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError):
            raise _Stopped(timed_out=False) from None
        return self._read_frame(time.monotonic() + RENDER_WALL_LIMIT_S, cpu_limit)

    def _read_frame(self, wall_deadline: float, cpu_limit: float | None) -> dict[str, Any]:
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        received = bytearray()
        size: int | None = None
        while size is None or len(received) < FRAME_HEADER.size + size:
            if time.monotonic() > wall_deadline:
                raise _Stopped(timed_out=True)
            if not select.select([fd], [], [], POLL_S)[0]:
                used = _cpu_seconds(self.popen.pid) if cpu_limit is not None else None
                if used is not None and cpu_limit is not None and used > cpu_limit:
                    raise _Stopped(timed_out=True)
                continue
            chunk = os.read(fd, READ_CHUNK_BYTES)
            if not chunk:
                raise _Stopped(timed_out=False)
            received += chunk
            if size is None and len(received) >= FRAME_HEADER.size:
                (size,) = FRAME_HEADER.unpack_from(received)
        reply: dict[str, Any] = json.loads(received[FRAME_HEADER.size :])
        return reply

    def close(self) -> None:
        """Stop the process (idempotent): closing its stdin ends an idle one, a kill ends a busy one."""
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            try:
                self.popen.stdin.close()
            except OSError:  # a request half-written to a process that is gone
                pass
        if self.alive:
            self.popen.kill()
        self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()


class TemplateRenderer:
    """Compiles and renders templates in sandbox processes; thread-safe. Errors are ChatTemplateError (400)."""

    def __init__(
        self, *, processes: int = RENDER_PROCESSES, cpu_budget_s: float = RENDER_CPU_BUDGET_S
    ) -> None:
        self.cpu_budget_s = cpu_budget_s
        self._slots = threading.BoundedSemaphore(processes)
        self._idle: list[_RenderProcess] = []
        self._lock = threading.Lock()
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="edge-runtime-template-spawner")
        """Starts every render process. A process dies with the thread that started it (PR_SET_PDEATHSIG is
        per thread), so not with a request's worker thread, which the event loop's pool retires when idle (the
        render in flight on it then failed with a 400)."""

    def compile(self, source: str, label: str) -> None:
        """Raises ChatTemplateError if `source` does not compile."""
        self._ask({"op": "compile", "source": source}, label)

    def render(self, source: str, variables: dict[str, Any], label: str) -> str:
        text: str = self._ask({"op": "render", "source": source, "variables": variables}, label)
        return text

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for process in idle:
            process.close()
        self._spawner.shutdown(wait=False)

    def _ask(self, request: dict[str, Any], label: str) -> Any:
        payload = json.dumps(request, default=str).encode("ascii")
        with self._slots:
            process = self._take()
            try:
                reply = process.ask(payload, self.cpu_budget_s)
            except _Stopped as stopped:
                process.close()
                if stopped.timed_out:
                    raise ChatTemplateError(
                        f"{label} did not finish rendering within {self.cpu_budget_s:g} s of CPU and was stopped"
                    ) from None
                log.error("a chat template renderer exited with code %s", process.popen.returncode)
                raise ChatTemplateError(f"{label} stopped its renderer process") from None
            if reply.get("retire"):
                process.close()
            else:
                with self._lock:
                    self._idle.append(process)
        if "error" in reply:
            raise ChatTemplateError(reply["error"])
        if "limit" in reply:
            raise ChatTemplateError(f"{label} {reply['limit']} and was stopped")
        return reply["ok"]

    def _take(self) -> _RenderProcess:
        with self._lock:
            while self._idle:
                process = self._idle.pop()
                if process.alive:
                    return process
                process.close()
        return self._spawner.submit(_RenderProcess).result()


_default: TemplateRenderer | None = None
_default_lock = threading.Lock()


def default_renderer() -> TemplateRenderer:
    """The process-wide renderer, started on first use and stopped at exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = TemplateRenderer()
            atexit.register(_default.close)
        return _default
