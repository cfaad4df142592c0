"""Hostile request bodies found by fuzzing: each gets a 400 naming the problem, and the server keeps serving."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import TINY_ID, RunningServer, serve, tiny_settings

from edge_runtime.store import read_gguf_header

NATIVE_COMPLETION = "/v1/inference/completion"
OPENAI_CHAT = "/v1/chat/completions"


def _native_with_format(response_format: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_id": TINY_ID,
        "content": "hi",
        "sampling_params": {"max_tokens": 4},
        "response_format": response_format,
    }


def _gbnf(text: str) -> dict[str, Any]:
    return _native_with_format({"type": "grammar", "bnf": {"grammar": text}})


def _schema(schema: object) -> dict[str, Any]:
    return _native_with_format({"type": "json_schema", "json_schema": schema})


def _many_properties(count: int) -> dict[str, Any]:
    return {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(count)}}


def _assert_native_400(http: httpx.Client, body: dict[str, Any], *fragments: str) -> None:
    response = http.post(NATIVE_COMPLETION, json=body)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    for fragment in fragments:
        assert fragment in detail
    assert http.get("/v1/health").json() == {"status": "OK"}


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        pytest.param(_gbnf("root ::= root"), ("rule 'root'", "can never finish"), id="gbnf-self-reference"),
        pytest.param(
            _gbnf('root ::= "a" x\nx ::= "b" x'), ("'root', 'x'", "can never finish"), id="gbnf-endless-tail"
        ),
        pytest.param(
            _gbnf("root ::= " + "(" * 5000 + '"a"' + ")" * 5000),
            ("nested too deeply",),
            id="gbnf-deep-parens",
        ),
        pytest.param(
            _gbnf("root ::= " + '"a"{10000} ' * 201), ("over 2,000,000 copies",), id="gbnf-repetition-bomb"
        ),
        pytest.param(_schema({"$ref": "#"}), ("schema", "can never finish"), id="schema-ref-root"),
        pytest.param(
            _schema({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}),
            ("schema", "can never finish"),
            id="schema-ref-cycle",
        ),
        pytest.param(
            _schema({"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}),
            ("schema", "can never finish"),
            id="schema-required-self",
        ),
        pytest.param(_schema(_many_properties(3000)), ("too many properties",), id="schema-3000-properties"),
        pytest.param(
            _gbnf("root ::= <[999999]>"), ("token 999999", "outside this model's vocabulary"), id="gbnf-unknown-token"
        ),
        pytest.param(_gbnf("root ::= [^\\x00-\\U0010FFFF]"), ("matches nothing",), id="gbnf-empty-class"),
        pytest.param(
            _schema({"$defs": {"x": {"type": "string", "minLength": 5, "maxLength": 2}}, "$ref": "#/$defs/x"}),
            ("matches nothing",),
            id="schema-ref-to-nothing",
        ),

        pytest.param(
            _schema({"type": "array", "prefixItems": [{"type": "integer"}] * 3000}),
            ("too many properties or items",),
            id="schema-3000-prefix-items",
        ),
        pytest.param(
            _schema({"type": "string", "pattern": "|".join(f"w{i}" for i in range(20000))}),
            ("'pattern'", "exceeds the limit of 10000"),
            id="schema-pattern-20000-alternatives",
        ),
    ],
)
def test_uncompilable_grammar_is_a_400_naming_it(
    http: httpx.Client, body: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    _assert_native_400(http, body, *fragments)


@pytest.fixture(scope="module")
def roomy_http(tiny_store_dir: Path) -> Iterator[httpx.Client]:
    """A server taking bodies of up to 8 MiB (the serve default), so grammars meet the grammar limit first."""
    for server in serve(tiny_settings(tiny_store_dir, max_body_bytes=8 << 20)):
        with server.client() as client:
            yield client


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        pytest.param(
            _gbnf("root ::= " + " | ".join(f'"w{i}"' for i in range(80000))),
            ("the grammar is", "the limit is 524,288"),
            id="gbnf-over-512-kib",
        ),
        pytest.param(
            _schema({"enum": [f"value-{i}" for i in range(60000)]}),
            ("characters of JSON", "the limit is 524,288"),
            id="schema-over-512-kib",
        ),
    ],
)
def test_grammar_too_big_to_compile_quickly_is_a_400_naming_the_limit(
    roomy_http: httpx.Client, body: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    _assert_native_400(roomy_http, body, *fragments)


def _openai_chat_400_message(http: httpx.Client, **extra: object) -> str:
    body = {"model": TINY_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, **extra}
    response = http.post(OPENAI_CHAT, json=body)
    assert response.status_code == 400, response.text
    message: str = response.json()["error"]["message"]
    return message


def test_openai_json_schema_referring_only_to_itself_is_a_400(http: httpx.Client) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#"}}}
    assert "can never finish" in _openai_chat_400_message(http, response_format=response_format)


def test_tool_with_too_many_parameters_is_a_400_naming_the_tool(http: httpx.Client) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": _many_properties(3000)}}
    message = _openai_chat_400_message(http, tools=[tool], tool_choice="required")
    assert "tool 'f'" in message
    assert "too many properties" in message


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(
            b'{"model": "tiny", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
            "unicode",
            id="bad-utf8",
        ),
        pytest.param(b"[" * 10000 + b"]" * 10000, "recursion limit", id="nested-10000-deep"),
        pytest.param(b'{"model": "tiny", "messages": [', "EOF", id="truncated"),
    ],
)
def test_openai_body_that_is_not_json_is_a_400_saying_so(
    http: httpx.Client, raw: bytes, problem: str
) -> None:
    response = http.post(OPENAI_CHAT, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert message.startswith("Invalid JSON")
    assert problem in message


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_openai_non_finite_number_is_a_400_saying_so(http: httpx.Client, value: str) -> None:
    raw = f'{{"model": "{TINY_ID}", "messages": [{{"role": "user", "content": "hi"}}], "temperature": {value}}}'
    response = http.post(OPENAI_CHAT, content=raw.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "finite number" in error["message"] and error["param"] == "temperature"


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_native_non_finite_number_is_a_400_saying_so(http: httpx.Client, value: str) -> None:
    """Llama Stack bounds temperature only below: Infinity once reached the sampler (and 1e308 drew a token the
    grammar had masked: tests/engine/test_sampling.py)."""
    raw = (
        f'{{"model_id": "{TINY_ID}", "messages": [{{"role": "user", "content": "hi"}}], "sampling_params": '
        f'{{"strategy": {{"type": "top_p", "temperature": {value}}}, "max_tokens": 2}}}}'
    )
    json_type = {"content-type": "application/json"}
    response = http.post("/v1/inference/chat-completion", content=raw.encode(), headers=json_type)
    assert response.status_code == 400, response.text
    [error] = response.json()["error"]["detail"]["errors"]
    assert error["msg"] == "Input should be a finite number" and error["loc"][-1] == "temperature"
    # A huge finite temperature is a uniform draw over what the grammar allows (it once drew a masked token).
    huge = {
        "model_id": TINY_ID,
        "messages": [{"role": "user", "content": "hi"}],
        "sampling_params": {"strategy": {"type": "top_p", "temperature": 1e308}, "max_tokens": 8},
        "response_format": {"type": "json_schema", "json_schema": {"type": "array", "items": {"type": "integer"}}},
    }
    answer = http.post("/v1/inference/chat-completion", json=huge)
    assert answer.status_code == 200, answer.text


def test_malformed_schema_is_a_400_on_both_families(http: httpx.Client) -> None:
    """A keyword of the wrong type the compiler reached through another keyword was a TypeError and a 500."""
    schema = {"type": "object", "dependentSchemas": {"a": {"properties": "date-time"}}}
    chat = {"model": TINY_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    response_format = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    openai = http.post(OPENAI_CHAT, json={**chat, "response_format": response_format})
    assert openai.status_code == 400, openai.text
    assert "invalid schema: at '#/dependentSchemas/a/properties'" in openai.json()["error"]["message"]
    native = http.post(
        "/v1/inference/completion",
        json={"model_id": TINY_ID, "content": "hi", "response_format": {"type": "json_schema", "json_schema": schema}},
    )
    assert native.status_code == 400 and "invalid schema" in native.json()["detail"], native.text


def _requests_with_status(http: httpx.Client, status_prefix: str) -> float:
    lines = http.get("/metrics").text.splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("edge_runtime_requests_total{") and f'status="{status_prefix}' in line
    )


def test_client_leaving_mid_body_is_a_499_not_a_server_error(
    tiny_server: RunningServer, http: httpx.Client
) -> None:
    errors_before = _requests_with_status(http, "5")
    left_before = _requests_with_status(http, "499")
    host, port = tiny_server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b'Content-Length: 500\r\n\r\n{"model": "tiny"'
        )
    deadline = time.monotonic() + 10
    while _requests_with_status(http, "499") == left_before:
        assert time.monotonic() < deadline, "the server never recorded the abandoned request"
        time.sleep(0.05)
    assert _requests_with_status(http, "5") == errors_before


def test_tool_schema_too_big_to_compile_quickly_is_a_400_naming_the_tool(roomy_http: httpx.Client) -> None:
    parameters = {"type": "object", "properties": {"color": {"enum": [f"value-{i}" for i in range(60000)]}}}
    tool = {"type": "function", "function": {"name": "paint", "parameters": parameters}}
    body = {
        "model": TINY_ID,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4,
        "tools": [tool],
        "tool_choice": "required",
    }
    response = roomy_http.post(OPENAI_CHAT, json=body)
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "tool 'paint'" in message and "the limit is 524,288" in message
    assert roomy_http.get("/v1/health").json() == {"status": "OK"}


def test_grammar_asking_for_the_end_of_generation_token_is_a_400(http: httpx.Client, tiny_model_path: Path) -> None:
    eos = int(read_gguf_header(tiny_model_path).metadata["tokenizer.ggml.eos_token_id"])
    _assert_native_400(http, _gbnf(f'root ::= "a" <[{eos}]>'), f"token {eos}", "ends generation")
