"""What the benchmark scripts share: the machine's load (every number is given with it), a free loopback port
for a server under test, and stopping a child process for good."""

from __future__ import annotations

import os
import socket
import subprocess

STOP_TIMEOUT_S = 30.0


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def end_process(process: subprocess.Popen[str] | subprocess.Popen[bytes], *, terminate: bool = True) -> None:
    """SIGTERM (unless the caller asked the child to exit some other way), then SIGKILL after a grace."""
    if terminate:
        process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
