"""`edge-runtime serve` in a subprocess on a free loopback port, for tests that must see the process itself
(it may die, its memory is read from /proc)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from live_server import free_port

START_TIMEOUT_S = 120


@dataclass(frozen=True)
class ServeProcess:
    process: subprocess.Popen[str]
    base_url: str

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
        """What the server printed (call once it has stopped)."""
        return self.process.stdout.read() if self.process.stdout else ""


@contextmanager
def serve_process(models_dir: Path, *args: str) -> Iterator[ServeProcess]:
    """Start `serve` on the store and wait for /v1/health; stop it (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    command = [
        sys.executable, "-m", "edge_runtime.cli", "serve", "--models-dir", str(models_dir),
        "--port", str(port), *args,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    served = ServeProcess(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        with served.client() as http:
            while True:
                assert served.alive(), served.output()
                assert time.monotonic() < deadline, "the server did not come up"
                try:
                    if http.get("/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
        yield served
    finally:
        if served.alive():
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()
