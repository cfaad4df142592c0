"""Typed errors to HTTP status and body, per API family (no server needed)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from edge_runtime.api import native_types as nt
from edge_runtime.api import openai_types as ot
from edge_runtime.api.errors import ParameterError
from edge_runtime.errors import BadRequest, ContextLengthExceeded, ModelNotFound, Overloaded, WrongModelType
from edge_runtime.server.errors import (
    Forbidden,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
    UnsupportedMediaType,
    error_response,
    stream_error_payload,
    validation_response,
)


@pytest.mark.parametrize(
    ("error", "native_status", "openai_status"),
    [
        (BadRequest("bad"), 400, 400),
        (ParameterError("logit_bias", "out of range"), 400, 400),
        (ContextLengthExceeded(900, 512), 400, 400),
        (WrongModelType("embedding model"), 400, 400),
        (ModelNotFound("nope"), 400, 404),
        (Overloaded("queue full"), 503, 429),
        (Unauthorized("no key"), 401, 401),
        (PayloadTooLarge("big"), 413, 413),
        (Forbidden("no"), 403, 403),
        (UnsupportedMediaType("text/plain"), 415, 415),
        (RequestTimeout("slow"), 408, 408),
    ],
)
def test_status_per_family(error: Exception, native_status: int, openai_status: int) -> None:
    native = error_response(error, "native")
    openai = error_response(error, "openai")
    assert (native.status_code, openai.status_code) == (native_status, openai_status)
    assert json.loads(native.body) == {"detail": str(error)}
    body = json.loads(openai.body)
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] == str(error)


def test_a_too_long_prompt_names_the_field_the_route_took_it_from() -> None:
    error = ContextLengthExceeded(900, 512)
    assert json.loads(error_response(error, "openai").body)["error"]["param"] == "messages"
    assert json.loads(error_response(error, "openai", prompt_param="prompt").body)["error"]["param"] == "prompt"


def test_overloaded_carries_retry_after() -> None:
    assert error_response(Overloaded("full"), "openai").headers["retry-after"] == "1"
    assert error_response(Overloaded("full"), "native").headers["retry-after"] == "1"


def test_parameter_error_names_the_parameter_for_openai() -> None:
    body = json.loads(error_response(ParameterError("suffix", "not supported"), "openai").body)
    assert body["error"]["param"] == "suffix"


def test_unexpected_error_is_a_generic_500_without_details(caplog: pytest.LogCaptureFixture) -> None:
    response = error_response(RuntimeError("secret internals"), "native")
    assert response.status_code == 500 and b"secret" not in response.body
    assert "secret internals" in caplog.text


def test_validation_error_shapes() -> None:
    with pytest.raises(ValidationError) as native_error:
        nt.CompletionRequest.model_validate({"content": "x"})
    body = json.loads(validation_response(native_error.value, "native").body)
    assert body["error"]["detail"]["errors"][0]["loc"] == ["body", "model_id"]
    with pytest.raises(ValidationError) as openai_error:
        ot.CompletionRequest.model_validate({"model": "m", "prompt": "x", "bogus": 1})
    response = validation_response(openai_error.value, "openai")
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["param"] == "bogus"


def test_stream_error_payloads() -> None:
    assert stream_error_payload(BadRequest("boom"), "native") == {"error": {"message": "boom"}}
    assert stream_error_payload(BadRequest("boom"), "openai")["error"]["message"] == "boom"
