"""A web page cannot drive a server on loopback: DNS-rebound `Host` names, foreign `Origin`s and non-JSON POST
bodies (which browsers send cross-site without a preflight) are refused before any route runs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import TINY_ID, RunningServer, serve, tiny_settings

APP_ORIGIN = "http://app.example"
PROXY_NAME = "llm.internal.example"


@pytest.fixture(scope="module")
def configured_server(tiny_store_dir: Path) -> Iterator[RunningServer]:
    yield from serve(
        tiny_settings(
            tiny_store_dir,
            preload=(),
            cors_origins=(APP_ORIGIN,),
            allowed_hosts=(PROXY_NAME, "*.lan.example"),
        )
    )


def test_a_rebound_host_name_is_refused_with_how_to_allow_it(http: httpx.Client) -> None:
    native = http.get("/v1/models", headers={"host": "attacker.example"})
    assert native.status_code == 403
    detail = native.json()["detail"]
    assert "Host" in detail and "attacker.example" in detail and "--allowed-host attacker.example" in detail
    openai_shape = http.post(
        "/v1/chat/completions",
        headers={"host": "attacker.example:8321"},
        json={"model": TINY_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
    )
    assert openai_shape.status_code == 403 and openai_shape.json()["error"]["code"] == "forbidden"
    registered = http.post(
        "/v1/models",
        headers={"host": "attacker.example"},
        json={"model_id": "rebound-alias", "provider_model_id": TINY_ID},
    )
    assert registered.status_code == 403
    assert http.get("/v1/models/rebound-alias").status_code == 404


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8321", "app.localhost:1", "127.0.0.1", "127.0.0.1:9", "[::1]:8321", "10.1.2.3",
     "LOCALHOST.", socket.gethostname()],
)
def test_local_names_and_ip_literals_are_served(http: httpx.Client, host: str) -> None:
    assert http.get("/v1/health", headers={"host": host}).status_code == 200


def test_configured_host_names_are_served(configured_server: RunningServer) -> None:
    with configured_server.client() as http:
        for host in (PROXY_NAME, f"{PROXY_NAME}:443", "box.lan.example"):
            assert http.get("/v1/health", headers={"host": host}).status_code == 200, host
        assert http.get("/v1/health", headers={"host": "lan.example.evil"}).status_code == 403


def test_host_names_parse_like_a_browser_sends_them() -> None:
    from edge_runtime.server.request_guards import AllowedHosts, host_name

    assert host_name("Example.COM.:80") == "example.com"
    assert host_name("[::1]:8321") == "::1"
    allowed = AllowedHosts.build("0.0.0.0", ["*"])
    assert allowed.allows("anything.example")
    bound = AllowedHosts.build("myserver.lan", [])
    assert bound.allows("myserver.lan") and not bound.allows("otherserver.lan")


def test_a_foreign_origin_is_refused_even_for_simple_requests(http: httpx.Client) -> None:
    evil = {"origin": "http://evil.example"}
    form = http.post(
        "/v1/models",
        headers={**evil, "content-type": "application/x-www-form-urlencoded"},
        content=b'{"model_id": "csrf-alias", "provider_model_id": "tiny"}',
    )
    assert form.status_code == 403
    detail = form.json()["detail"]
    assert "http://evil.example" in detail and "--cors-origin http://evil.example" in detail
    as_json = http.post(
        "/v1/models", headers=evil, json={"model_id": "csrf-alias", "provider_model_id": TINY_ID}
    )
    assert as_json.status_code == 403
    assert http.get("/v1/models", headers=evil).status_code == 403
    assert http.get("/v1/models", headers={"origin": "null"}).status_code == 403
    assert http.get("/v1/models/csrf-alias").status_code == 404


def test_a_foreign_origin_preflight_is_refused_and_a_configured_one_keeps_cors(
    configured_server: RunningServer,
) -> None:
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    with configured_server.client() as http:
        refused = http.options("/v1/models", headers={**preflight, "origin": "http://evil.example"})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
        allowed = http.options("/v1/models", headers={**preflight, "origin": APP_ORIGIN})
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == APP_ORIGIN
        listed = http.get("/v1/models", headers={"origin": APP_ORIGIN})
        assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == APP_ORIGIN
        trailing_slash = http.get("/v1/health", headers={"origin": APP_ORIGIN.upper() + "/"})
        assert trailing_slash.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; b=x",
     None],
)
def test_a_post_body_not_declared_json_is_415_naming_its_type(
    http: httpx.Client, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    body = b'{"model_id": "text-alias", "provider_model_id": "tiny"}'
    response = http.post("/v1/models", headers=headers, content=body)
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert "application/json" in detail and (content_type or "no Content-Type") in detail
    openai_shape = http.post(
        "/v1/completions", headers=headers, content=b'{"model": "tiny", "prompt": "x", "max_tokens": 1}'
    )
    assert openai_shape.status_code == 415
    assert openai_shape.json()["error"]["code"] == "unsupported_media_type"
    assert http.get("/v1/models/text-alias").status_code == 404


def test_json_with_parameters_is_accepted(http: httpx.Client) -> None:
    response = http.post(
        "/v1/completions",
        headers={"content-type": "Application/JSON; charset=utf-8"},
        content=b'{"model": "tiny", "prompt": "x", "max_tokens": 1}',
    )
    assert response.status_code == 200
