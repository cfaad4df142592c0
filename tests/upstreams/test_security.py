"""Only the operator points the server at an upstream: `POST /v1/models` may name a configured upstream and
nothing else (no SSRF), and a key is read from the environment or a file when a request goes out, never
stored, listed, logged, or echoed back in an error."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import front_server
from live_server import RunningServer
from remote_setup import add_remote
from scripted_upstream import Answer, ScriptedUpstream

from edge_runtime.cli import main
from edge_runtime.store import ModelStore

HI = [{"role": "user", "content": "hi"}]
KEY = "sk-test-0123456789abcdef"
KEY_ENV = "EDGE_RUNTIME_TEST_UPSTREAM_KEY"
OK = {"id": "c1", "object": "chat.completion", "created": 1, "model": "x",
      "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}]}


@pytest.fixture
def store(tmp_path: Path, scripted: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(KEY_ENV, KEY)
    add_remote(tmp_path, "keyed", scripted.base_url, provider="openai", names=("hosted",), api_key_env=KEY_ENV)
    return tmp_path


@pytest.fixture
def front(store: Path) -> Iterator[RunningServer]:
    with front_server(store) as server:
        yield server


def test_register_names_a_configured_upstream_or_is_refused(front: RunningServer, scripted: ScriptedUpstream) -> None:
    scripted.script(Answer(body=OK))
    with front.client() as http:
        sneaky = {"model_id": "evil", "provider_id": "remote::vllm", "url": "http://169.254.169.254/latest",
                  "metadata": {"base_url": "http://169.254.169.254/latest"}}
        refused = http.post("/v1/models", json=sneaky)
        assert refused.status_code == 400
        assert "no upstream 'remote::vllm' is configured" in refused.json()["detail"]
        assert http.get("/v1/models/evil").status_code == 404
        registered = http.post(
            "/v1/models", json={"model_id": "mine", "provider_id": "hosted", "provider_model_id": "gpt-x",
                                "metadata": {"base_url": "http://169.254.169.254/"}},
        )
        assert registered.status_code == 200, registered.text
        assert registered.json()["provider_id"] == "hosted"
        assert http.post("/v1/chat/completions", json={"model": "mine", "messages": HI}).status_code == 200
        assert scripted.received[-1].body["model"] == "gpt-x"  # sent to the configured upstream, nowhere else
        assert http.delete("/v1/models/mine").status_code == 200
        assert http.get("/v1/models/mine").status_code == 404


def test_the_key_goes_to_the_upstream_and_nowhere_else(
    front: RunningServer, store: Path, scripted: ScriptedUpstream, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}
    scripted.script(Answer(401, echo))
    with caplog.at_level(logging.INFO), front.client() as http:
        answer = http.post("/v1/chat/completions", json={"model": "keyed", "messages": HI})
        providers = http.get("/v1/providers").text
        models = http.get("/v1/models").text
    assert scripted.received[0].headers["authorization"] == f"Bearer {KEY}"
    assert answer.status_code == 401
    assert "[key]" in answer.json()["error"]["message"]
    assert main(["--models-dir", str(store), "models", "show", "keyed"]) == 0
    shown = capsys.readouterr().out
    assert f"${KEY_ENV}" in shown
    for text in (answer.text, providers, models, shown, caplog.text, (store / "upstreams.json").read_text()):
        assert KEY not in text


def test_a_missing_key_is_a_503_naming_the_variable(
    front: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    with front.client() as http:
        answer = http.post("/v1/chat/completions", json={"model": "keyed", "messages": HI})
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "upstream_key_missing"
    assert KEY_ENV in answer.json()["error"]["message"]


def test_a_key_file_is_read_when_the_request_goes_out(tmp_path: Path, scripted: ScriptedUpstream) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text("first-key\n")
    add_remote(tmp_path, "filed", scripted.base_url, names=("filed",), api_key_file=str(key_file))
    scripted.script(Answer(body=OK))
    with front_server(tmp_path) as front, front.client() as http:
        http.post("/v1/chat/completions", json={"model": "filed", "messages": HI})
        key_file.write_text("rotated-key\n")
        http.post("/v1/chat/completions", json={"model": "filed", "messages": HI})
    assert [r.headers["authorization"] for r in scripted.received] == ["Bearer first-key", "Bearer rotated-key"]
    assert "first-key" not in (tmp_path / "upstreams.json").read_text()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://user:pw@10.0.0.2/v1", "no credentials in the URL"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http://10.0.0.2/v1?key=1", "no query"),
    ],
)
def test_add_remote_refuses_urls_that_are_not_plain_base_urls(
    tmp_path: Path, url: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--models-dir", str(tmp_path), "models", "add-remote", "m", "--url", url]) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "upstreams.json").exists()


def test_add_remote_with_no_url_uses_the_providers_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--models-dir", str(tmp_path), "models", "add-remote", "g", "--provider", "groq",
                 "--provider-model", "llama-3.1-8b-instant"]) == 0
    document = json.loads((tmp_path / "upstreams.json").read_text())
    (upstream,) = document["upstreams"]
    assert upstream["base_url"] == "https://api.groq.com/openai/v1"
    assert upstream["api_key_env"] == "GROQ_API_KEY"
    assert main(["--models-dir", str(tmp_path), "models", "rm", "g"]) == 0
    assert json.loads((tmp_path / "upstreams.json").read_text())["models"] == []
    assert main(["--models-dir", str(tmp_path), "models", "add-remote", "o", "--provider", "openai-compat"]) == 2
    assert "has no default URL" in capsys.readouterr().err


def test_a_remote_id_cannot_shadow_a_local_one_or_be_shadowed(
    tmp_path: Path, tiny_model_path: Path, scripted: ScriptedUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    ModelStore(tmp_path).import_model(tiny_model_path, model_id="tiny", link=True)
    assert main(["--models-dir", str(tmp_path), "models", "add-remote", "tiny", "--url", scripted.base_url]) == 2
    assert "is a stored model here" in capsys.readouterr().err
    add_remote(tmp_path, "far", scripted.base_url, names=("up",))
    with front_server(tmp_path) as front, front.client() as http:
        local = http.post("/v1/models", json={"model_id": "tiny", "provider_id": "up"})
        again = http.post("/v1/models", json={"model_id": "far", "provider_id": "up", "provider_model_id": "far"})
        alias = http.post("/v1/models", json={"model_id": "far", "provider_model_id": "tiny"})
    assert local.status_code == 400 and "already served here" in local.json()["detail"]
    assert again.status_code == 200  # the same registration again is idempotent, as Llama Stack clients expect
    assert alias.status_code == 400 and "already a remote model" in alias.json()["detail"]
