"""Errors a user can act on, over HTTP: unknown routes, wrong methods and unknown models answer in the route
family's error shape on every family; a content part with an unknown field is one line naming the field; and
the access log line of an error carries its message and parameter."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest
from live_server import TINY_ID

OPENAI_PREFIXES = ("/v1", "/v1/openai/v1")


def _openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _native_detail(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"}
    detail: str = body["detail"]
    return detail


@pytest.mark.parametrize(
    "path",
    ["/v1/openai/v1/nothing", "/v1/openai/v2/chat", "/v1/responses/x/y", "/v1/chat", "/v1/embeddings/x"],
)
def test_an_unknown_openai_path_is_an_openai_404_naming_it(http: httpx.Client, path: str) -> None:
    error = _openai_error(http.get(path), 404)
    assert error["code"] == "not_found" and error["type"] == "invalid_request_error"
    assert f"GET {path}" in error["message"] and "/openapi.json" in error["message"]


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/nothing", "/metrics/x", "/openapi.json/x", "/v1/chatter"])
def test_an_unknown_native_path_is_a_native_404_naming_it(http: httpx.Client, path: str) -> None:
    detail = _native_detail(http.get(path), 404)
    assert f"GET {path}" in detail and "/openapi.json" in detail


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("DELETE", "/v1/openai/v1/completions", "POST"),
        ("PUT", "/v1/responses", "POST"),
        ("POST", "/v1/openai/v1/responses/resp_x", "DELETE, GET, HEAD"),
        ("POST", "/v1/openai/v1/models", "GET, HEAD"),
    ],
)
def test_a_wrong_method_on_an_openai_route_is_an_openai_405_with_allow(
    http: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = http.request(method, path, json={})
    error = _openai_error(response, 405)
    assert error["code"] == "method_not_allowed"
    assert method in error["message"] and allowed in error["message"]
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/inference/chat-completion", "POST"),
        ("PUT", "/v1/models", "GET, HEAD, POST"),
        ("POST", "/metrics", "GET, HEAD"),
        ("DELETE", "/openapi.json", "GET, HEAD"),
    ],
)
def test_a_wrong_method_on_a_native_route_is_a_native_405_with_allow(
    http: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = http.request(method, path, json={})
    detail = _native_detail(response, 405)
    assert method in detail and allowed in detail
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize("prefix", OPENAI_PREFIXES)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
        ("/completions", {"prompt": "hi"}),
        ("/embeddings", {"input": "hi"}),
        ("/responses", {"input": "hi"}),
    ],
)
def test_an_unknown_model_is_openais_model_not_found(
    http: httpx.Client, prefix: str, path: str, body: dict[str, Any]
) -> None:
    error = _openai_error(http.post(prefix + path, json={"model": "nope", **body}), 404)
    assert (error["code"], error["param"], error["type"]) == ("model_not_found", "model", "invalid_request_error")
    assert "'nope'" in error["message"]


def test_retrieving_an_unknown_openai_model_is_model_not_found(http: httpx.Client) -> None:
    error = _openai_error(http.get("/v1/openai/v1/models/nope"), 404)
    assert (error["code"], error["param"]) == ("model_not_found", "model")


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/inference/chat-completion", {"messages": [{"role": "user", "content": "hi"}]}, 400),
        ("/v1/inference/completion", {"content": "hi"}, 400),
        ("/v1/inference/embeddings", {"contents": ["hi"]}, 400),
    ],
)
def test_an_unknown_model_on_the_native_routes_is_a_400_detail(
    http: httpx.Client, path: str, body: dict[str, Any], status: int
) -> None:
    assert "'nope'" in _native_detail(http.post(path, json={"model_id": "nope", **body}), status)


def test_getting_an_unknown_native_model_is_a_404_detail(http: httpx.Client) -> None:
    assert "'nope'" in _native_detail(http.get("/v1/models/nope"), 404)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "foo": 1}]}]},
            "messages.0.content.0.foo",
        ),
        (
            "/v1/openai/v1/chat/completions",
            {
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y", "z": 2}]},
                ]
            },
            "messages.1.content.1.z",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "assistant", "content": [{"type": "text", "text": "x", "foo": 1}]}]},
            "messages.0.content.0.foo",
        ),
        (
            "/v1/responses",
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": "x", "foo": 1}]}]},
            "input.0.content.0.foo",
        ),
    ],
)
def test_an_unknown_field_in_a_content_part_is_one_line_naming_it(
    http: httpx.Client, path: str, body: dict[str, Any], param: str
) -> None:
    error = _openai_error(http.post(path, json={"model": TINY_ID, **body}), 400)
    assert error["message"] == f"{param}: unknown field"
    assert (error["param"], error["code"]) == (param, "extra_forbidden")


def test_an_unknown_content_part_type_is_one_line_naming_the_part(http: httpx.Client) -> None:
    body = {"model": TINY_ID, "messages": [{"role": "user", "content": [{"type": "audio", "text": "x"}]}]}
    error = _openai_error(http.post("/v1/chat/completions", json=body), 400)
    assert error["param"] == "messages.0.content.0" and error["code"] == "union_tag_invalid"
    assert error["message"].startswith("messages.0.content.0: ") and "'audio'" in error["message"]
    assert ";" not in error["message"] and "str" not in error["message"].split(":")[0]


def test_a_wrong_type_in_a_nested_field_names_the_field_as_sent(http: httpx.Client) -> None:
    body = {"model": TINY_ID, "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    error = _openai_error(http.post("/v1/chat/completions", json=body), 400)
    assert error["param"] == "messages.0.content.0.text"
    assert error["message"] == "messages.0.content.0.text: Input should be a valid string"


def test_an_error_message_spells_out_the_first_ten_errors(http: httpx.Client) -> None:
    part = {"type": "text", "text": "x", "foo": 1}
    body = {"model": TINY_ID, "messages": [{"role": "user", "content": [part]} for _ in range(15)]}
    error = _openai_error(http.post("/v1/chat/completions", json=body), 400)
    named = [f"messages.{i}.content.0.foo: unknown field" for i in range(10)]
    assert error["message"] == "; ".join(named) + "; and 5 more errors"


def test_a_body_with_thousands_of_errors_is_answered_with_the_first(http: httpx.Client) -> None:
    """Each bad part fails twice (as a string and as a part): 1,200 errors, past the 1,000 located."""
    part = {"type": "text", "text": "x", "foo": 1}
    messages = [{"role": "user", "content": [part]} for _ in range(600)]
    error = _openai_error(http.post("/v1/chat/completions", json={"model": TINY_ID, "messages": messages}), 400)
    assert error["message"].startswith("messages.0.content.0.foo: unknown field; messages.1.content.0.foo")
    assert error["message"].endswith("; and more errors") and error["message"].count(";") == 10
    native = http.post("/v1/inference/chat-completion", json={"model_id": TINY_ID, "messages": [{"role": "x"}] * 1500})
    assert native.status_code == 400 and len(native.json()["error"]["detail"]["errors"]) == 1000


def _access_line(caplog: pytest.LogCaptureFixture, request_id: str) -> str:
    """The access log line of one request (written just after its response ends)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [
            r.getMessage()
            for r in caplog.records
            if r.name == "edge_runtime.access" and f"request_id={request_id}" in r.getMessage()
        ]
        if lines or time.monotonic() > deadline:
            assert len(lines) == 1, lines
            return lines[0]
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("method", "path", "body", "logged"),
    [
        (
            "POST",
            "/v1/chat/completions",
            {"model": "nope", "messages": [{"role": "user", "content": "hi"}]},
            "status=404 model=nope ",
        ),
        (
            "POST",
            "/v1/chat/completions",
            {"model": TINY_ID, "messages": [{"role": "user", "content": [{"type": "text", "text": "x", "q": 1}]}]},
            'error="messages.0.content.0.q: unknown field" param=messages.0.content.0.q',
        ),
        (
            "POST",
            "/v1/inference/completion",
            {"model_id": "nope", "content": "hi"},
            "error=\"model 'nope' not found\" param=model",
        ),
        ("POST", "/v1/inference/completion", {"content": "hi"}, 'error="model_id: Field required" param=model_id'),
        ("GET", "/v1/nope", None, 'error="no route GET /v1/nope (GET /openapi.json lists the routes)" param=-'),
        (
            "POST",
            "/v1/chat/completions",
            {"model": TINY_ID, "messages": [{"role": "user", "content": "hi"}], "top_k": "x"},
            "param=top_k",
        ),
    ],
)
def test_the_access_line_of_an_error_carries_its_message_and_param(
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    logged: str,
) -> None:
    caplog.set_level(logging.INFO, logger="edge_runtime")
    response = http.request(method, path, json=body)
    assert 400 <= response.status_code < 500
    line = _access_line(caplog, response.headers["x-request-id"])
    assert logged in line and " error=" in line and " param=" in line
    if body is not None and body.get("model") == "nope":
        assert line.endswith("error=\"model 'nope' not found\" param=model")


def test_the_access_line_of_a_middleware_refusal_carries_its_message(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_runtime")
    response = http.post("/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    line = _access_line(caplog, response.headers["x-request-id"])
    assert 'error="request body must be sent as Content-Type: application/json' in line


def test_an_error_message_in_the_access_line_is_escaped_and_capped(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_runtime")
    model = "x\nrequest_id=0 status=200 " + "y" * 1000
    response = http.post("/v1/completions", json={"model": model, "prompt": "hi"})
    assert response.status_code == 404
    line = _access_line(caplog, response.headers["x-request-id"])
    assert "\n" not in line and "error=\"model 'x\\nrequest_id=0 status=200 yyy" in line
    assert "more characters)" in line and len(line) < 1200
