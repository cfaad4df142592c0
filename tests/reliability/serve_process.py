"""`edge-runtime serve` as a user runs it: a subprocess on a free loopback port, its output collected line by
line, for tests that must see the process itself (it may die, its memory is read from /proc, it gets signals)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from live_server import free_port, read_output, serve_command, wait_until_ready


@dataclass
class ServeProcess:
    process: subprocess.Popen[str]
    base_url: str
    lines: list[str] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60.0)

    def alive(self) -> bool:
        return self.process.poll() is None

    def peak_rss_bytes(self) -> int:
        """VmHWM: the most resident memory the server process ever had."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc status")

    def output(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def serve_process(models_dir: Path, *args: str, prefix: Sequence[str] = ()) -> Iterator[ServeProcess]:
    """Start `serve` on the store with exactly `args` (`prefix` runs before the command, e.g. to set an
    rlimit), wait for /v1/health, and stop it with SIGTERM (then SIGKILL) on exit."""
    port = free_port()
    process = subprocess.Popen(
        [*prefix, *serve_command(models_dir, port, *args, preload=())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = ServeProcess(process, f"http://127.0.0.1:{port}")
    reader = read_output(process, server.lines)
    try:
        wait_until_ready(process, server.lines, f"{server.base_url}/v1/health", "server")
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def running_server(
    models_dir: Path, *extra: str, prefix: Sequence[str] = ()
) -> AbstractContextManager[ServeProcess]:
    """serve_process with one small slot and a 5 s grace, the setting of the store tests."""
    return serve_process(models_dir, "--slots", "1", "--ctx", "256", "--grace", "5", *extra, prefix=prefix)
