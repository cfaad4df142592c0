"""uvicorn as this server runs it, for `edge-runtime serve` and the tests alike: an HTTP/1.1 protocol that
bounds how long a client may take to send its request head and each piece of its body, and how many
connections may be open (as nginx's client_header_timeout, client_body_timeout and worker_connections), so
slow or numerous clients cannot hold the server."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

from edge_runtime.errors import EdgeRuntimeError, Overloaded
from edge_runtime.server.errors import Family, RequestTimeout, classify, error_body
from edge_runtime.server.middleware import route_family
from edge_runtime.server.settings import ServerSettings
from edge_runtime.server.shutdown import uvicorn_grace_s

log = logging.getLogger("edge_runtime.server")

KEEP_ALIVE_S = 5
"""An idle keep-alive connection is closed after this long (uvicorn's default, stated here)."""
MAX_HEAD_BYTES = 16 * 1024
"""A request line plus headers larger than this is a 400 (h11's default, stated here)."""


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> ConnectionLimits:
        return cls(settings.header_timeout_s, settings.body_timeout_s, settings.max_connections)


def _raw_response(exc: EdgeRuntimeError, family: Family) -> bytes:
    """A whole `Connection: close` response in the family's error shape, written without h11 (which cannot
    answer a request it has not parsed)."""
    info = classify(exc, family)
    body = json.dumps(error_body(info, family)).encode()
    lines = [
        f"HTTP/1.1 {info.status} {STATUS_PHRASES[info.status].decode()}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if info.retry_after is not None:
        lines.append(f"retry-after: {info.retry_after}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


Waiting = Literal["head", "body"]


class ThrottledLog:
    """One log line per `interval_s` at most for a kind of event a client can cause at will (refused or
    timed-out connections), counting the events each line stands for, so a flood cannot flood the log."""

    def __init__(self, level: int, interval_s: float = 1.0) -> None:
        self.level = level
        self.interval_s = interval_s
        self._last = -math.inf
        self._count = 0

    def event(self, message: str, *args: object) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            if self._count > 1:
                message += " (and %d more like it since the last such line)"
                args = (*args, self._count - 1)
            log.log(self.level, message, *args)
            self._last = now
            self._count = 0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline while the server waits for the client: the whole request head
    within `header_timeout_s` of the connection opening or the previous response ending, and each body
    piece within `body_timeout_s` of the last (not while the server itself holds reading back). A client
    that misses one gets a 408 and the connection is closed. A connection beyond `max_connections` is
    answered 503 and closed at once."""

    limits: ClassVar[ConnectionLimits]
    refused_log: ClassVar[ThrottledLog]
    timeout_log: ClassVar[ThrottledLog]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting: Waiting | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.refused_log.event(
                "refused a connection from %s: %d connections are open (--max-connections)",
                self._peer(),
                self.limits.max_connections,
            )
            limit = self.limits.max_connections
            error = Overloaded(f"too many open connections (limit {limit}); retry later")
            self.transport.write(_raw_response(error, "native"))
            self.transport.close()
            return
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch(new_data=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._waiting = None

    def _arm(self, waiting: Waiting, seconds: float) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._waiting = waiting
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _watch(self, new_data: bool = False) -> None:
        """Arms the deadline the connection's state calls for: the head's is not moved by more bytes of the
        head (a client dripping one byte a second must still finish in time), the body's is by each piece."""
        if self.transport.is_closing():
            self._disarm()
        elif self.conn.their_state is h11.IDLE:
            if self._waiting != "head":
                self._arm("head", self.limits.header_timeout_s)
        elif self.conn.their_state is h11.SEND_BODY:
            if self._waiting != "body" or new_data:
                self._arm("body", self.limits.body_timeout_s)
        else:
            self._disarm()

    def _server_holds_reading(self) -> bool:
        """The client is not late if it waits for us: reading paused (the app has not taken the body so far)
        or a `100 Continue` not yet sent."""
        return self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue)

    def _expired(self) -> None:
        self._deadline = None
        waiting, self._waiting = self._waiting, None
        if self.transport.is_closing() or waiting is None:
            return
        if waiting == "body" and self._server_holds_reading():
            self._arm("body", self.limits.body_timeout_s)
            return
        if waiting == "head":
            partial = bool(self.conn.trailing_data[0])
            seconds = self.limits.header_timeout_s
            if partial:
                error = RequestTimeout(f"the request head did not arrive within {seconds:g} s")
                self.transport.write(_raw_response(error, "native"))
            self.timeout_log.event(
                "closed a connection from %s: no whole request head within %g s", self._peer(), seconds
            )
        else:
            seconds = self.limits.body_timeout_s
            cycle = self.cycle
            if cycle is not None and not cycle.response_started:
                error = RequestTimeout(f"no piece of the request body arrived for {seconds:g} s")
                family = route_family(cycle.scope["path"])
                cycle.disconnected = True
                cycle.message_event.set()
                self.transport.write(_raw_response(error, family))
            self.timeout_log.event(
                "closed a connection from %s: its request body stalled for %g s", self._peer(), seconds
            )
        self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """The protocol class uvicorn instantiates per connection, carrying these limits (and the server's
    throttled logs)."""
    attributes = {
        "limits": limits,
        "refused_log": ThrottledLog(logging.WARNING),
        "timeout_log": ThrottledLog(logging.INFO),
    }
    return type("GuardedH11Protocol", (GuardedH11Protocol,), attributes)


def uvicorn_config(app: ASGIApp, settings: ServerSettings, **overrides: Any) -> uvicorn.Config:
    """The server's uvicorn configuration from its settings; `overrides` (tests: log level, grace) win."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": guarded_protocol(ConnectionLimits.from_settings(settings)),
        "ws": "none",
        "lifespan": "on",
        "access_log": False,
        "log_config": None,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "timeout_graceful_shutdown": uvicorn_grace_s(settings.shutdown_grace_s),
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)
