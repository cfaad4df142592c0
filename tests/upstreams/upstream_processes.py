"""Real upstreams on loopback for the tests: llama-cpp-python's OpenAI server, a second `edge-runtime serve`,
llama-server (opt-in), and a socket that accepts and never answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from live_server import free_port, read_output, wait_until_ready

HERE = Path(__file__).resolve().parent


@dataclass
class UpstreamProcess:
    process: subprocess.Popen[str]
    base_url: str
    """The OpenAI base URL (ends in /v1)."""
    lines: list[str] = field(default_factory=list)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextmanager
def upstream_process(command: Sequence[str], port: int, ready_path: str = "/v1/models") -> Iterator[UpstreamProcess]:
    """Start `command` (listening on `port`), wait until `ready_path` answers 200, and kill it on exit."""
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    upstream = UpstreamProcess(process, f"http://127.0.0.1:{port}/v1")
    reader = read_output(process, upstream.lines)
    try:
        wait_until_ready(process, upstream.lines, f"http://127.0.0.1:{port}{ready_path}", "upstream")
        yield upstream
    finally:
        upstream.kill()
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def llama_cpp_server(model_path: Path) -> AbstractContextManager[UpstreamProcess]:
    """llama-cpp-python's OpenAI server on `model_path`, one thread, serving it as `tiny-upstream`."""
    port = free_port()
    command = [
        sys.executable, str(HERE / "llama_cpp_upstream.py"), "--model", str(model_path), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "1024", "--n_threads", "1", "--model_alias", "tiny-upstream",
        "--logits_all", "true",
    ]  # fmt: skip
    return upstream_process(command, port)


def edge_runtime_server(models_dir: Path, *options: str) -> AbstractContextManager[UpstreamProcess]:
    port = free_port()
    command = [
        sys.executable, "-m", "edge_runtime.cli", "serve", "--models-dir", str(models_dir), "--port", str(port),
        "--slots", "2", "--ctx", "512", "--grace", "1", *options,
    ]  # fmt: skip
    return upstream_process(command, port, ready_path="/v1/health")


@dataclass
class SilentServer:
    base_url: str
    accepted: list[socket.socket]

    def wait_for_request(self, request_line: str, timeout_s: float = 30.0) -> None:
        """Wait until some connection has sent a request starting with `request_line` (left unread)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for connection in list(self.accepted):
                try:
                    head = connection.recv(len(request_line), socket.MSG_PEEK | socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                if head.decode(errors="replace") == request_line:
                    return
            time.sleep(0.01)
        raise AssertionError(f"no {request_line!r} arrived within {timeout_s} s")

    def wait_all_closed_by_peer(self, timeout_s: float = 30.0) -> list[str]:
        """Wait until every accepted connection was closed by its client (the front server); the request line
        each one sent (a health probe's GET, a request's POST)."""
        deadline = time.monotonic() + timeout_s
        request_lines = []
        for connection in self.accepted:
            connection.settimeout(max(0.01, deadline - time.monotonic()))
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
            request_lines.append(data.split(b"\r\n", 1)[0].decode())
        return request_lines


@contextmanager
def silent_socket() -> Iterator[SilentServer]:
    """A server that accepts connections, but never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield SilentServer(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", accepted)
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()
