"""The one place where typed errors become HTTP statuses and bodies, in each API family's shape."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from starlette.responses import JSONResponse

from edge_runtime.api.errors import ParameterError
from edge_runtime.errors import (
    BadRequest,
    ContextLengthExceeded,
    EdgeRuntimeError,
    InsufficientMemory,
    ModelNotFound,
    Overloaded,
    ShuttingDown,
    WrongModelType,
)

Family = Literal["native", "openai"]
RETRY_AFTER_SECONDS = 1

log = logging.getLogger("edge_runtime.server")


class Unauthorized(EdgeRuntimeError):
    """Raised by the auth middleware when a request lacks a valid bearer key."""


class PayloadTooLarge(EdgeRuntimeError):
    """Raised by the body-limit middleware when a request body exceeds the configured size."""


class ClientDisconnected(EdgeRuntimeError):
    """The client left before a non-streamed answer was ready; its generation was cancelled (499, unread)."""


class Forbidden(EdgeRuntimeError):
    """The request is understood but refused, e.g. deleting a stored GGUF file over the API (HTTP 403)."""


class ResourceNotFound(EdgeRuntimeError):
    """A route-level lookup (GET/DELETE of a model) found nothing: a 404 in both families."""


@dataclass(frozen=True)
class ErrorInfo:
    status: int
    message: str
    openai_type: str
    code: str | None
    param: str | None = None
    retry_after: int | None = None


def classify(exc: BaseException, family: Family) -> ErrorInfo:
    """Status and OpenAI error fields for a typed error; anything untyped is a server bug (500, logged)."""
    message = str(exc)
    if isinstance(exc, Overloaded):
        status = 503 if family == "native" else 429
        return ErrorInfo(
            status,
            message or "server overloaded",
            "rate_limit_exceeded",
            "overloaded",
            retry_after=RETRY_AFTER_SECONDS,
        )
    if isinstance(exc, ShuttingDown):
        return ErrorInfo(503, message, "server_error", "shutting_down", retry_after=RETRY_AFTER_SECONDS)
    if isinstance(exc, InsufficientMemory):
        return ErrorInfo(503, message, "server_error", "insufficient_memory", retry_after=RETRY_AFTER_SECONDS)
    if isinstance(exc, Unauthorized):
        return ErrorInfo(401, message, "invalid_request_error", "invalid_api_key")
    if isinstance(exc, PayloadTooLarge):
        return ErrorInfo(413, message, "invalid_request_error", "payload_too_large")
    if isinstance(exc, ClientDisconnected):
        return ErrorInfo(499, message, "invalid_request_error", "client_closed_request")
    if isinstance(exc, Forbidden):
        return ErrorInfo(403, message, "invalid_request_error", "forbidden")
    if isinstance(exc, ResourceNotFound):
        return ErrorInfo(404, message, "invalid_request_error", "not_found")
    if isinstance(exc, ModelNotFound):
        status = 400 if family == "native" else 404
        return ErrorInfo(status, message, "invalid_request_error", "model_not_found", param="model")
    if isinstance(exc, ParameterError):
        return ErrorInfo(400, message, "invalid_request_error", "invalid_parameter", param=exc.param)
    if isinstance(exc, ContextLengthExceeded):
        return ErrorInfo(400, message, "invalid_request_error", "context_length_exceeded", param="messages")
    if isinstance(exc, WrongModelType):
        return ErrorInfo(400, message, "invalid_request_error", "wrong_model_type", param="model")
    if isinstance(exc, BadRequest):
        return ErrorInfo(400, message, "invalid_request_error", type(exc).__name__)
    log.exception("internal error", exc_info=exc)
    return ErrorInfo(500, "internal server error", "server_error", "internal_error")


def error_response(exc: BaseException, family: Family) -> JSONResponse:
    info = classify(exc, family)
    headers = {"Retry-After": str(info.retry_after)} if info.retry_after is not None else None
    if family == "native":
        return JSONResponse({"detail": info.message}, status_code=info.status, headers=headers)
    body = {
        "error": {"message": info.message, "type": info.openai_type, "param": info.param, "code": info.code}
    }
    return JSONResponse(body, status_code=info.status, headers=headers)


def _loc(error: ErrorDetails) -> list[str | int]:
    return ["body", *error["loc"]]


def _located(loc: Sequence[object], msg: str) -> str:
    """`field.path: msg`, or the bare msg when the whole body is at fault (e.g. it is not JSON)."""
    return f"{'.'.join(str(part) for part in loc)}: {msg}" if loc else msg


def validation_response(exc: ValidationError, family: Family) -> JSONResponse:
    """A body that fails validation: 400 with every error's location (OpenAI: the first one's parameter)."""
    errors = [{"loc": _loc(e), "msg": e["msg"], "type": e["type"]} for e in exc.errors(include_url=False)]
    if family == "native":
        return JSONResponse({"error": {"detail": {"errors": errors}}}, status_code=400)
    first = exc.errors(include_url=False)[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    if first["type"] == "extra_forbidden":
        message = f"unknown parameter: '{param}'"
    else:
        message = "; ".join(_located(e["loc"][1:], str(e["msg"])) for e in errors)
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": first["type"]}
    }
    return JSONResponse(body, status_code=400)


def stream_error_payload(exc: BaseException, family: Family) -> dict[str, Any]:
    """The last event of a stream that failed after it began (the status is already 200)."""
    info = classify(exc, family)
    if family == "native":
        return {"error": {"message": info.message}}
    return {
        "error": {"message": info.message, "type": info.openai_type, "param": info.param, "code": info.code}
    }
