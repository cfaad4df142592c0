"""Starting a real uvicorn in a thread on a free loopback port, for the server tests."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette

from edge_runtime.server.app import create_app
from edge_runtime.server.http_server import uvicorn_config
from edge_runtime.server.settings import ServerSettings
from edge_runtime.store import read_gguf_header

TINY_ID = "tiny"
MAX_BODY_BYTES = 256 * 1024
QUEUE_SIZE = 2
N_SLOTS = 2


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    settings: ServerSettings
    app: Starlette
    """The served app, for tests that look at its state (`app.state.server`) while it serves."""

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60.0, **kwargs)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve(settings: ServerSettings) -> Iterator[RunningServer]:
    """Run uvicorn in a thread until the generator is closed, configured as `edge-runtime serve` configures it
    (same protocol, timeouts and limits); fails the test if it does not start."""
    port = free_port()
    settings = replace(settings, host="127.0.0.1", port=port)
    app = create_app(settings)
    config = uvicorn_config(app, settings, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start (see the log above)")
        time.sleep(0.05)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", settings, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def tiny_settings(models_dir: Path, **overrides: object) -> ServerSettings:
    base = ServerSettings(
        models_dir=models_dir,
        preload=(TINY_ID,),
        n_slots=N_SLOTS,
        n_ctx=1024,
        queue_size=QUEUE_SIZE,
        max_body_bytes=MAX_BODY_BYTES,
        import_default_model=False,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def no_special_tokens_bias(model_path: Path) -> dict[str, float]:
    """An OpenAI logit_bias banning the model's special tokens (BOS, EOS, EOT...), so that a generation
    runs until its context is full."""
    metadata = read_gguf_header(model_path).metadata
    ids = {int(metadata[k]) for k in metadata if k.startswith("tokenizer.ggml.") and k.endswith("_token_id")}
    return {str(token_id): -100.0 for token_id in ids}


def metric(http: httpx.Client, name: str, model_id: str = TINY_ID) -> float:
    """One model's value of a series on /metrics (0 when absent)."""
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(f'{name}{{model="{model_id}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for_engine(http: httpx.Client, busy: float, queued: float, *, timeout_s: float = 60.0) -> None:
    """Poll /metrics until the model has `busy` busy slots and `queued` generations waiting."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = (metric(http, "edge_runtime_busy_slots"), metric(http, "edge_runtime_queue_depth"))
        if seen == (busy, queued):
            return
        assert time.monotonic() < deadline, f"expected {busy} busy slots and {queued} queued, saw {seen}"
        time.sleep(0.05)


def post_raw(base_url: str, path: str, body: dict[str, object]) -> socket.socket:
    """Send a POST on a bare socket and return it unread, so a test can hang up whenever it likes (an httpx
    client would wait for the response head, which a queued request only gets once it has a slot)."""
    address = urlsplit(base_url)
    sock = socket.create_connection((address.hostname, address.port))
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {address.netloc}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    )
    sock.sendall(head.encode() + payload)
    return sock


def serve_command(
    models_dir: Path, port: int, *options: str, preload: tuple[str, ...] = (TINY_ID,)
) -> list[str]:
    """`edge-runtime serve` as a user runs it (for subprocess tests), loading `preload` at start."""
    loads = [arg for model_id in preload for arg in ("--model", model_id)]
    return [
        sys.executable, "-m", "edge_runtime.cli", "serve", "--models-dir", str(models_dir),
        "--port", str(port), *loads, *options,
    ]  # fmt: skip


PROCESS_START_TIMEOUT_S = 120.0


def read_output(process: subprocess.Popen[str], lines: list[str]) -> threading.Thread:
    """Collect a child process's combined output into `lines`, line by line, in a daemon thread (what a test
    shows when the process fails)."""

    def collect() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    return reader


def wait_until_ready(process: subprocess.Popen[str], lines: list[str], url: str, what: str) -> None:
    """Poll `url` until it answers 200; fail with the process's output if it exits or does not come up."""
    deadline = time.monotonic() + PROCESS_START_TIMEOUT_S
    with httpx.Client(timeout=5.0) as http:
        while True:
            if process.poll() is not None:
                time.sleep(0.2)  # let the reader take the last lines
                output = "\n".join(lines)
                raise AssertionError(f"the {what} exited with {process.returncode}:\n{output}")
            assert time.monotonic() < deadline, f"the {what} did not come up:\n" + "\n".join(lines)
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
