"""Plain ASGI middleware: bearer-key auth, request body limit, and the access log with request metrics."""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_runtime.log_safe import loggable
from edge_runtime.server.errors import Family, PayloadTooLarge, Unauthorized, error_response
from edge_runtime.server.metrics import ServerMetrics

access_log = logging.getLogger("edge_runtime.access")

_OPENAI_PREFIXES = ("/v1/openai", "/v1/completions", "/v1/chat", "/v1/embeddings", "/v1/responses")
AUTH_EXEMPT_PATHS = frozenset({"/v1/health"})


def route_family(path: str) -> Family:
    """Which error shape a path answers in (a prefix counts up to a `/`: `/v1/chatter` is native); the shared
    `/v1/models` answers in the native one."""
    for prefix in _OPENAI_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return "openai"
    return "native"


class BearerAuthMiddleware:
    """Every HTTP request but the health check must carry `Authorization: Bearer <key>` with a configured key."""

    def __init__(self, app: ASGIApp, api_keys: Sequence[str]) -> None:
        self.app = app
        self._keys = [key.encode() for key in api_keys]

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return False
                token = token.strip()
                return any(hmac.compare_digest(token, key) for key in self._keys)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in AUTH_EXEMPT_PATHS or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        response = error_response(Unauthorized("missing or invalid API key"), route_family(scope["path"]))
        response.headers["WWW-Authenticate"] = "Bearer"
        await response(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413: by Content-Length up front, else while the body is read
    (the route then sees PayloadTooLarge from its read and answers 413)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            error = PayloadTooLarge(
                f"request body of {int(declared)} bytes exceeds the limit of {self.max_bytes}"
            )
            await error_response(error, route_family(scope["path"]))(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(f"request body exceeds the limit of {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


class AccessLogMiddleware:
    """One log line per request when its response ends (id, method, path, status, model, tokens, durations,
    the OpenAI `user`, and for an error answer the message and parameter the client got, which every
    ErrorResponse leaves in the scope's state), the request counter by route template and status, and an
    `X-Request-ID` header. What the client chose (method, path, model, user, and the error message, which
    may repeat it) is escaped and capped, so it cannot forge lines."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        logged = False

        def finish() -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.inc(template, str(status))
            error = ""
            if "error_message" in state:
                param = state.get("error_param")
                error = f" error={loggable(state['error_message'])} param={loggable(param or '-')}"
            access_log.info(
                "request_id=%s method=%s path=%s status=%d model=%s prompt_tokens=%s completion_tokens=%s "
                "ttft_ms=%s duration_ms=%.1f user=%s%s",
                request_id,
                loggable(scope["method"]),
                loggable(scope["path"]),
                status,
                loggable(state.get("model") or "-"),
                state.get("prompt_tokens", "-"),
                state.get("completion_tokens", "-"),
                f"{state['ttft_s'] * 1000:.1f}" if "ttft_s" in state else "-",
                (time.perf_counter() - started) * 1000,
                loggable(state.get("user") or "-"),
                error,
            )

        async def logging_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finish()

        try:
            await self.app(scope, receive, logging_send)
        finally:
            finish()
