"""What keeps a web page from driving a server on loopback: the `Host` must be a name this server answers to
(DNS rebinding, as Ollama's fix of CVE-2024-28224), an `Origin` must be configured, and a POST body must be
declared JSON (a page can send text/plain or form bodies cross-origin without a CORS preflight)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from edge_runtime.server.errors import Forbidden, UnsupportedMediaType, error_response
from edge_runtime.server.middleware import route_family

ANY = "*"
JSON_MEDIA_TYPE = "application/json"


SHOWN_LIMIT = 100
"""Characters of a refused header value an error message repeats."""


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_LIMIT else value[:SHOWN_LIMIT] + "..."


def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", []) if key == name]


def host_name(host_header: str) -> str:
    """The name in a `Host` header: port dropped, IPv6 brackets removed, lowercased, no trailing dot."""
    host = host_header.strip()
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = name
    return host.lower().rstrip(".")


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class AllowedHosts:
    """Names a `Host` header may carry beyond IP literals and `localhost`/`*.localhost`: the bound address,
    the machine's hostname, and the configured ones (`*.example.com` for subdomains, `*` for any)."""

    names: frozenset[str]
    suffixes: tuple[str, ...]
    any_host: bool = False

    @classmethod
    def build(cls, bound_host: str, configured: Iterable[str]) -> AllowedHosts:
        machine = socket.gethostname().lower()
        names = {bound_host.lower().rstrip("."), machine, machine.partition(".")[0]}
        suffixes = []
        any_host = False
        for entry in configured:
            entry = entry.strip().lower().rstrip(".")
            if entry == ANY:
                any_host = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            elif entry:
                names.add(entry)
        names.discard("")
        return cls(frozenset(names), tuple(suffixes), any_host)

    def allows(self, name: str) -> bool:
        if self.any_host or not name or name == "localhost" or name.endswith(".localhost"):
            return True
        return _is_ip_literal(name) or name in self.names or name.endswith(self.suffixes)


class HostGuardMiddleware:
    """403 for a `Host` the server does not answer to: a page on attacker.example whose name was rebound to
    127.0.0.1 sends `Host: attacker.example`, and is refused before anything is read or run."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for value in _header_values(scope, b"host"):
                name = host_name(value)
                if not self.allowed.allows(name):
                    error = Forbidden(
                        f"Host header '{_shown(name)}' is not allowed: this server answers to localhost, "
                        "IP addresses, its own hostname and the names given with --allowed-host; to serve "
                        f"this name, start it with --allowed-host {_shown(name)}"
                    )
                    await error_response(error, route_family(scope["path"]))(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def normalize_origin(origin: str) -> str:
    return origin.strip().lower().rstrip("/")


class OriginGuardMiddleware:
    """403 for a request carrying an `Origin` that is not configured with --cors-origin (CORS preflights
    included): browsers send `Origin` on cross-site requests, and a page's request must not reach a route even
    when its answer could not be read (a POST that registers a model has done its harm)."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.origins = frozenset(normalize_origin(origin) for origin in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ANY not in self.origins:
            for origin in _header_values(scope, b"origin"):
                if normalize_origin(origin) not in self.origins:
                    error = Forbidden(
                        f"Origin '{_shown(origin)}' is not allowed: to let pages from it call this API, "
                        f"start the server with --cors-origin {_shown(origin)}"
                    )
                    await error_response(error, route_family(scope["path"]))(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


class JsonBodyMiddleware:
    """415 for a POST whose `Content-Type` is not `application/json` (every POST route takes JSON): a page
    can send text/plain, form or multipart bodies to any origin without a preflight, JSON it cannot."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            declared = _header_values(scope, b"content-type")
            if [media_type(value) for value in declared] != [JSON_MEDIA_TYPE]:
                got = f"'{_shown(', '.join(declared))}'" if declared else "no Content-Type"
                error = UnsupportedMediaType(
                    f"request body must be sent as Content-Type: {JSON_MEDIA_TYPE}, got {got}"
                )
                await error_response(error, route_family(scope["path"]))(scope, receive, send)
                return
        await self.app(scope, receive, send)
