"""Slow or numerous clients cannot hold the server: a request head or body that does not arrive in time is a
408 and a closed connection, and a connection beyond --max-connections is a 503 and closed at once, while
normal requests are served throughout."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from live_server import RunningServer, serve, tiny_settings

PARTIAL_HEAD = b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n"
MAX_CONNECTIONS = 8


@pytest.fixture(scope="module")
def impatient_server(tiny_store_dir: Path) -> Iterator[RunningServer]:
    settings = tiny_settings(
        tiny_store_dir, preload=(), header_timeout_s=1.0, body_timeout_s=1.0, max_connections=MAX_CONNECTIONS
    )
    yield from serve(settings)


@pytest.fixture(scope="module")
def crowded_server(tiny_store_dir: Path) -> Iterator[RunningServer]:
    yield from serve(tiny_settings(tiny_store_dir, preload=(), header_timeout_s=120.0, max_connections=4))


def _connect(server: RunningServer) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout here fails the test)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _status_and_body(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_slow_request_heads_are_closed_while_others_are_served(impatient_server: RunningServer) -> None:
    with ExitStack() as stack:
        silent = stack.enter_context(_connect(impatient_server))
        partial = [stack.enter_context(_connect(impatient_server)) for _ in range(4)]
        for sock in partial:
            sock.sendall(PARTIAL_HEAD)
        with impatient_server.client() as http:
            assert http.get("/v1/health").status_code == 200
        for sock in partial:
            status, body = _status_and_body(_read_until_closed(sock))
            assert status == 408 and "request head" in str(body["detail"])
        assert _read_until_closed(silent) == b""


def test_a_head_dripped_byte_by_byte_is_still_cut_off(impatient_server: RunningServer) -> None:
    head = b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with _connect(impatient_server) as sock:
        sent = 0
        try:
            for sent in range(len(head)):
                sock.sendall(head[sent : sent + 1])
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < len(head) - 1, "the server waited for the whole dripped head"


def test_a_stalled_body_is_a_408_in_the_family_shape(impatient_server: RunningServer) -> None:
    with _connect(impatient_server) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"model": '
        )
        status, body = _status_and_body(_read_until_closed(sock))
    assert status == 408
    assert body["error"]["code"] == "request_timeout"  # type: ignore[index]
    with impatient_server.client() as http:
        assert http.get("/v1/health").status_code == 200


def test_connections_beyond_the_limit_are_refused_and_service_resumes(crowded_server: RunningServer) -> None:
    with ExitStack() as stack:
        held = [stack.enter_context(_connect(crowded_server)) for _ in range(4)]
        for sock in held:
            sock.sendall(PARTIAL_HEAD)
        with _connect(crowded_server) as extra:
            response = _read_until_closed(extra)
        status, body = _status_and_body(response)
        assert status == 503 and "too many open connections" in str(body["detail"])
        assert b"retry-after: 1" in response.lower()
        for sock in held:
            sock.sendall(b"Connection: close\r\n\r\n")
            assert _read_until_closed(sock).startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 30
    with crowded_server.client() as http:
        while True:
            try:
                status = http.get("/v1/health").status_code
            except httpx.TransportError:  # refused while the held connections are still closing
                status = None
            if status == 200:
                break
            assert time.monotonic() < deadline, "service did not resume after the held connections closed"
            time.sleep(0.05)
