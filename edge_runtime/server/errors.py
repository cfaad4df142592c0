"""The one place where typed errors become HTTP statuses and bodies, in each API family's shape."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

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
from edge_runtime.upstreams.errors import (
    MissingApiKey,
    UpstreamBadOutput,
    UpstreamFailed,
    UpstreamRejected,
)

Family = Literal["native", "openai"]
RETRY_AFTER_SECONDS = 1
ERRORS_IN_MESSAGE = 10
"""Validation errors one error message spells out (a body with thousands of bad items would make it huge);
the native body lists each error with its location, up to ERRORS_LOCATED."""
ERRORS_LOCATED = 1000
"""Validation errors located and reported at most: locating costs ~30 us each on the event loop, and an
8 MB body can fail hundreds of thousands of times."""

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
    if isinstance(exc, UpstreamFailed):
        return ErrorInfo(exc.status, message, "server_error", exc.code, retry_after=exc.retry_after)
    if isinstance(exc, UpstreamRejected):
        return ErrorInfo(exc.status, message, "invalid_request_error", "upstream_rejected")
    if isinstance(exc, UpstreamBadOutput):
        return ErrorInfo(502, message, "server_error", "upstream_bad_output")
    if isinstance(exc, MissingApiKey):
        return ErrorInfo(503, message, "server_error", "upstream_key_missing")
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


class ErrorResponse(JSONResponse):
    """An error body that also leaves its message and parameter in the request scope's state, where the
    access log reads them: an operator sees why a client failed without the client's copy of the answer."""

    def __init__(
        self,
        content: dict[str, Any],
        status_code: int,
        message: str,
        param: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(content, status_code=status_code, headers=headers)
        self.message = message
        self.param = param

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        state["error_message"] = self.message
        state["error_param"] = self.param
        await super().__call__(scope, receive, send)


def error_body(info: ErrorInfo, family: Family) -> dict[str, Any]:
    if family == "native":
        return NativeError(detail=info.message).model_dump()
    detail = OpenAIErrorDetail(message=info.message, type=info.openai_type, param=info.param, code=info.code)
    return OpenAIError(error=detail).model_dump()


def info_response(info: ErrorInfo, family: Family, headers: dict[str, str] | None = None) -> ErrorResponse:
    all_headers = dict(headers or {})
    if info.retry_after is not None:
        all_headers["Retry-After"] = str(info.retry_after)
    body = error_body(info, family)
    return ErrorResponse(body, info.status, info.message, info.param, headers=all_headers or None)


def error_response(
    exc: BaseException, family: Family, prompt_param: str = "messages", headers: dict[str, str] | None = None
) -> ErrorResponse:
    return info_response(classify(exc, family, prompt_param), family, headers)


Loc = list[str | int]


def _input_path(data: object, loc: Sequence[str | int], error_type: str) -> Loc | None:
    """The part of pydantic's `loc` that names keys and indexes of the request: the labels pydantic puts in
    for union members (`str`, `list[...]`, a tag like `user`) are left out. None when `loc` does not fit."""
    if not loc:
        return []
    part, rest = loc[0], loc[1:]
    if not rest and error_type in _KEY_ERRORS:
        return [part] if isinstance(data, dict) and isinstance(part, str) else None
    child = _child(data, part)
    if child is not _MISSING:
        tail = _input_path(child, rest, error_type)
        if tail is not None:
            return [part, *tail]
    return _input_path(data, rest, error_type)


def _child(data: object, part: str | int) -> object:
    """`data[part]` when `part` is a key of the object or an index of the array; else _MISSING."""
    if isinstance(data, dict) and isinstance(part, str):
        return data.get(part, _MISSING)
    if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
        return data[part]
    return _MISSING


_MISSING = object()
_KEY_ERRORS = frozenset({"missing", "extra_forbidden"})
"""Errors whose location ends with a key of an object (absent, or not allowed), never a union label."""


@dataclass(frozen=True)
class FieldError:
    """One validation error located in the request as the client wrote it."""

    loc: Loc
    msg: str
    type: str


def _field_errors(exc: ValidationError, body: object) -> list[FieldError]:
    """The errors a client can act on. A union reports every member's errors (a content part with an unknown
    key also fails as `str`); of each union's errors only the deepest are kept: those of the member the input
    was meant to be, whose discriminator or shape matched furthest. Only the first ERRORS_LOCATED are read."""
    located: list[tuple[tuple[str | int, ...] | None, FieldError]] = []
    for error in exc.errors(include_url=False)[:ERRORS_LOCATED]:
        raw = tuple(error["loc"])
        path = _input_path(body, raw, error["type"]) if body is not _MISSING else None
        if path is None:
            located.append((None, FieldError(list(raw), error["msg"], error["type"])))
            continue
        kept = 0
        while kept < len(raw) and kept < len(path) and raw[kept] == path[kept]:
            kept += 1
        union_site = raw[:kept] if kept < len(raw) else None
        msg = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        located.append((union_site, FieldError(path, msg, error["type"])))
    deepest: dict[tuple[str | int, ...], int] = {}
    for site, field in located:
        if site is not None:
            deepest[site] = max(deepest.get(site, 0), len(field.loc))
    chosen: dict[tuple[tuple[str | int, ...], str, str], FieldError] = {}
    for site, field in located:
        if site is None or len(field.loc) == deepest[site]:
            chosen.setdefault((tuple(field.loc), field.msg, field.type), field)
    return list(chosen.values())


def _located(loc: Sequence[object], msg: str) -> str:
    """`field.path: msg`, or the bare msg when the whole body is at fault (e.g. it is not JSON)."""
    return f"{'.'.join(str(part) for part in loc)}: {msg}" if loc else msg


def _parsed(raw: bytes | None) -> object:
    """The body as JSON, or _MISSING when it is not JSON (or nested past the parser's depth)."""
    if raw is None:
        return _MISSING
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _MISSING


def validation_response(exc: ValidationError, family: Family, raw_body: bytes | None = None) -> ErrorResponse:
    """A body that fails validation: 400 with each error's location in the request (`raw_body`, when given,
    lets union members' labels be left out of those locations). Native: every error (up to ERRORS_LOCATED);
    OpenAI: one message, the first error's parameter."""
    errors = _field_errors(exc, _parsed(raw_body))
    first = errors[0]
    param = ".".join(str(part) for part in first.loc) or None
    if first.type == "extra_forbidden" and len(first.loc) == 1:
        message = f"unknown parameter: '{param}'"
    else:
        message = "; ".join(_located(e.loc, e.msg) for e in errors[:ERRORS_IN_MESSAGE])
        if exc.error_count() > ERRORS_LOCATED:
            message += "; and more errors"
        elif len(errors) > ERRORS_IN_MESSAGE:
            message += f"; and {len(errors) - ERRORS_IN_MESSAGE} more errors"
    if family == "native":
        items = [{"loc": ["body", *e.loc], "msg": e.msg, "type": e.type} for e in errors]
        return ErrorResponse({"error": {"detail": {"errors": items}}}, 400, message, param)
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": first.type}}
    return ErrorResponse(body, 400, message, param)


def stream_error_payload(exc: BaseException, family: Family) -> dict[str, Any]:
    """The last event of a stream that failed after it began (the status is already 200)."""
    info = classify(exc, family)
    if family == "native":
        return {"error": {"message": info.message}}
    return {
        "error": {"message": info.message, "type": info.openai_type, "param": info.param, "code": info.code}
    }
