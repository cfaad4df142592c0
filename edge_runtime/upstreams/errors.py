"""What going through an upstream can fail with; edge_runtime/server/errors.py maps each to a status."""

from __future__ import annotations

from edge_runtime.errors import EdgeRuntimeError


class UpstreamFailed(EdgeRuntimeError):
    """The upstream could not answer (unreachable, timed out, overloaded, a 5xx): the next upstream listed for
    the model is tried; the last one's failure reaches the client as a 502, 503 or 504."""

    status = 502
    code = "upstream_unavailable"
    retry_after: int | None = None


class UpstreamTimeout(UpstreamFailed):
    """No answer (or no next byte) within the read timeout (HTTP 504)."""

    status = 504
    code = "upstream_timeout"


class UpstreamBusy(UpstreamFailed):
    """429 or 503 from the upstream after the retries (HTTP 503 with the upstream's Retry-After)."""

    status = 503
    code = "upstream_overloaded"

    def __init__(self, message: str, retry_after: int | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamRejected(EdgeRuntimeError):
    """The upstream refused the request itself (a 4xx other than 429): the same request would fail anywhere,
    so it is not retried; its status and message reach the client (the key, if echoed, removed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UpstreamBadOutput(EdgeRuntimeError):
    """The upstream answered, but its text does not have the structure it was asked for (HTTP 502)."""


class MissingApiKey(EdgeRuntimeError):
    """An upstream's key variable is unset or its key file unreadable (HTTP 503: the operator must fix it).
    The message names the variable or file, never a key."""
