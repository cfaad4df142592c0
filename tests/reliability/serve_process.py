"""`edge-runtime serve` as a subprocess on a loopback port, its output collected line by line."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from live_server import free_port

START_TIMEOUT_S = 120.0


@dataclass
class ServeProcess:
    process: subprocess.Popen[str]
    base_url: str
    lines: list[str] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60.0)

    def output(self) -> str:
        return "\n".join(self.lines)


def serve_command(models_dir: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "edge_runtime.cli", "serve", "--models-dir", str(models_dir),
        "--port", str(port), "--slots", "1", "--ctx", "256", "--grace", "5", *extra,
    ]  # fmt: skip


@contextmanager
def running_server(models_dir: Path, *extra: str, prefix: Sequence[str] = ()) -> Iterator[ServeProcess]:
    """Start a server (`prefix` runs before the command, e.g. to set an rlimit), wait for /v1/health, and stop
    it with SIGTERM on exit."""
    port = free_port()
    process = subprocess.Popen(
        [*prefix, *serve_command(models_dir, port, *extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = ServeProcess(process, f"http://127.0.0.1:{port}")
    reader = threading.Thread(target=_collect, args=(process, server.lines), daemon=True)
    reader.start()
    try:
        _wait_until_healthy(server)
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


def _collect(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))


def _wait_until_healthy(server: ServeProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with server.client() as http:
        while True:
            if server.process.poll() is not None:
                time.sleep(0.2)  # let the reader take the last lines
                status = server.process.returncode
                raise AssertionError(f"the server exited with {status}:\n{server.output()}")
            assert time.monotonic() < deadline, f"the server did not come up:\n{server.output()}"
            try:
                if http.get("/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
