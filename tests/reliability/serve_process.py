"""`edge-runtime serve` as a user runs it: a subprocess on a free loopback port, its output kept in a file."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from live_server import free_port, serve_command


@dataclass(frozen=True)
class ServeProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve_process(store: Path, log_dir: Path, *options: str) -> Iterator[ServeProcess]:
    """Start `serve` on the tiny model and wait until it answers; killed on the way out if still running."""
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    command = serve_command(store, port, *options)
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    running = ServeProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=running.base_url, timeout=10) as http:
            while True:
                assert process.poll() is None, running.output()
                assert time.monotonic() < deadline, "the server did not come up:\n" + running.output()
                try:
                    if http.get("/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
