"""Bearer API keys (401 in each family's shape, health exempt) and CORS only when origins are configured."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import openai
import pytest
from live_server import RunningServer, serve, tiny_settings

KEYS = ("key-one", "key-two")
ORIGIN = "http://app.example"


@pytest.fixture(scope="module")
def secured_server(tiny_store_dir: Path) -> Iterator[RunningServer]:
    yield from serve(tiny_settings(tiny_store_dir, preload=(), api_keys=KEYS, cors_origins=(ORIGIN,)))


def test_requests_without_a_valid_key_are_401_in_the_family_shape(secured_server: RunningServer) -> None:
    with secured_server.client() as http:
        native = http.get("/v1/models")
        assert native.status_code == 401 and native.json() == {"detail": "missing or invalid API key"}
        assert native.headers["www-authenticate"] == "Bearer"
        openai_shape = http.post(
            "/v1/openai/v1/chat/completions", json={}, headers={"authorization": "Bearer nope"}
        )
        assert openai_shape.status_code == 401
        assert openai_shape.json()["error"]["code"] == "invalid_api_key"
        assert http.get("/metrics", headers={"authorization": "Basic a2V5LW9uZQ=="}).status_code == 401


def test_health_is_exempt_and_every_configured_key_works(secured_server: RunningServer, exit_stack: ExitStack) -> None:
    with secured_server.client() as http:
        assert http.get("/v1/health").status_code == 200
        for key in KEYS:
            assert http.get("/v1/models", headers={"authorization": f"Bearer {key}"}).status_code == 200
    sdk = exit_stack.enter_context(openai.OpenAI(base_url=f"{secured_server.base_url}/v1/openai/v1", api_key=KEYS[1]))
    assert sdk.models.list().data
    with pytest.raises(openai.AuthenticationError):
        exit_stack.enter_context(openai.OpenAI(base_url=f"{secured_server.base_url}/v1", api_key="wrong")).models.list()


def test_cors_only_for_configured_origins(secured_server: RunningServer, tiny_server: RunningServer) -> None:
    preflight = {
        "origin": ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    with secured_server.client() as http:
        allowed = http.options("/v1/inference/completion", headers=preflight)
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
        other = http.options(
            "/v1/inference/completion", headers={**preflight, "origin": "http://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
    with httpx.Client(base_url=tiny_server.base_url) as http:
        response = http.get("/v1/health", headers={"origin": ORIGIN})
        assert "access-control-allow-origin" not in response.headers


def test_serve_defaults_to_loopback_and_merges_keys_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edge_runtime.cli import build_parser
    from edge_runtime.server.cli_serve import settings_from_args

    monkeypatch.setenv("EDGE_RUNTIME_API_KEYS", "env-a, env-b")
    settings = settings_from_args(
        build_parser().parse_args(["serve", "--api-key", "cli-key", "--model", "m"])
    )
    assert (settings.host, settings.port) == ("127.0.0.1", 8321)
    assert settings.api_keys == ("cli-key", "env-a", "env-b")
    assert settings.cors_origins == () and settings.preload == ("m",)


@pytest.mark.parametrize("key", ["", "  "])
def test_an_empty_key_is_refused_by_the_settings(key: str) -> None:
    from edge_runtime.errors import BadRequest
    from edge_runtime.server.settings import ServerSettings

    with pytest.raises(BadRequest, match="empty"):
        ServerSettings(api_keys=("good", key))


@pytest.mark.parametrize(
    ("arguments", "env_keys"),
    [(["--api-key", " "], None), (["--api-key", "k"], ""), ([], "a,,b"), ([], "a,")],
)
def test_serve_arguments_with_an_empty_key_are_refused(
    monkeypatch: pytest.MonkeyPatch, arguments: list[str], env_keys: str | None
) -> None:
    from edge_runtime.cli import build_parser
    from edge_runtime.errors import BadRequest
    from edge_runtime.server.cli_serve import settings_from_args

    monkeypatch.delenv("EDGE_RUNTIME_API_KEYS", raising=False)
    if env_keys is not None:
        monkeypatch.setenv("EDGE_RUNTIME_API_KEYS", env_keys)
    with pytest.raises(BadRequest, match="empty"):
        settings_from_args(build_parser().parse_args(["serve", *arguments]))


@pytest.mark.parametrize(("arguments", "env_keys"), [(["--api-key", ""], None), ([], " ")])
def test_serve_refuses_an_empty_key_at_start_in_one_line(
    tmp_path: Path, arguments: list[str], env_keys: str | None
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EDGE_RUNTIME_API_KEYS"}
    if env_keys is not None:
        env["EDGE_RUNTIME_API_KEYS"] = env_keys
    command = [sys.executable, "-m", "edge_runtime.cli", "serve", "--models-dir", str(tmp_path), *arguments]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("edge-runtime: error: ")
    assert "empty" in done.stderr and "Traceback" not in done.stderr
