"""The one place where typed errors become HTTP statuses and bodies, in each API family's shape."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.responses import JSONResponse

from edge_runtime.api.errors import ParameterError
from edge_runtime.errors import (
    BadRequest,
    ContextLengthExceeded,
    EdgeRuntimeError,
    InsufficientMemory,
    InsufficientStorage,
    ModelNotFound,
    ModelUnavailable,
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


class RequestTimeout(EdgeRuntimeError):
    """Raised for a client too slow to send its request head or body (HTTP 408; the connection is closed)."""


class ClientDisconnected(EdgeRuntimeError):
    """The client left before a non-streamed answer was ready; its generation was cancelled (499, unread)."""


class Forbidden(EdgeRuntimeError):
    """The request is understood but refused: deleting a stored GGUF file over the API, or a `Host` or
    `Origin` the server does not answer to (HTTP 403)."""


class UnsupportedMediaType(EdgeRuntimeError):
    """Raised by the content-type guard when a POST body is not `application/json` (HTTP 415)."""


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


def classify(exc: BaseException, family: Family, prompt_param: str = "messages") -> ErrorInfo:
    """Status and OpenAI error fields for a typed error; anything untyped is a server bug (500, logged).
    `prompt_param` is the request field a too-long prompt came from (`messages`, `prompt`, `input`)."""
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
    if isinstance(exc, InsufficientStorage):
        return ErrorInfo(507, message, "server_error", "insufficient_storage")
    if isinstance(exc, ModelUnavailable):
        return ErrorInfo(503, message, "server_error", "model_unavailable", param="model")
    if isinstance(exc, Unauthorized):
        return ErrorInfo(401, message, "invalid_request_error", "invalid_api_key")
    if isinstance(exc, PayloadTooLarge):
        return ErrorInfo(413, message, "invalid_request_error", "payload_too_large")
    if isinstance(exc, RequestTimeout):
        return ErrorInfo(408, message, "invalid_request_error", "request_timeout")
    if isinstance(exc, ClientDisconnected):
        return ErrorInfo(499, message, "invalid_request_error", "client_closed_request")
    if isinstance(exc, Forbidden):
        return ErrorInfo(403, message, "invalid_request_error", "forbidden")
    if isinstance(exc, UnsupportedMediaType):
        return ErrorInfo(415, message, "invalid_request_error", "unsupported_media_type")
    if isinstance(exc, ResourceNotFound):
        return ErrorInfo(404, message, "invalid_request_error", "not_found")
    if isinstance(exc, ModelNotFound):
        status = 400 if family == "native" else 404
        return ErrorInfo(status, message, "invalid_request_error", "model_not_found", param="model")
    if isinstance(exc, ParameterError):
        return ErrorInfo(400, message, "invalid_request_error", "invalid_parameter", param=exc.param)
    if isinstance(exc, ContextLengthExceeded):
        return ErrorInfo(400, message, "invalid_request_error", "context_length_exceeded", param=prompt_param)
    if isinstance(exc, WrongModelType):
        return ErrorInfo(400, message, "invalid_request_error", "wrong_model_type", param="model")
    if isinstance(exc, BadRequest):
        return ErrorInfo(400, message, "invalid_request_error", type(exc).__name__)
    log.exception("internal error", exc_info=exc)
    return ErrorInfo(500, "internal server error", "server_error", "internal_error")


class NativeError(BaseModel):
    """The native family's error body."""

    detail: str


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    """The OpenAI family's error body."""

    error: OpenAIErrorDetail


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrors(BaseModel):
    errors: list[ValidationErrorItem]


class NativeValidationErrorDetail(BaseModel):
    detail: ValidationErrors


class NativeValidationError(BaseModel):
    """The native family's body for a request that fails validation (every error located)."""

    error: NativeValidationErrorDetail


def error_body(info: ErrorInfo, family: Family) -> dict[str, Any]:
    if family == "native":
        return NativeError(detail=info.message).model_dump()
    detail = OpenAIErrorDetail(message=info.message, type=info.openai_type, param=info.param, code=info.code)
    return OpenAIError(error=detail).model_dump()


def error_response(
    exc: BaseException, family: Family, prompt_param: str = "messages", headers: dict[str, str] | None = None
) -> JSONResponse:
    info = classify(exc, family, prompt_param)
    all_headers = dict(headers or {})
    if info.retry_after is not None:
        all_headers["Retry-After"] = str(info.retry_after)
    return JSONResponse(error_body(info, family), status_code=info.status, headers=all_headers or None)


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
