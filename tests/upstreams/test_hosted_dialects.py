"""The hosted dialects, which cannot be reached from here: for each provider a request and answer recorded in
tests/upstreams/fixtures/ from its documentation. The request we send must be the one its docs take (structured
output where it reads it, our extras renamed or refused); its answer comes back with our model id; what it does
not take is a 400 naming the parameter, before anything is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import front_server
from live_server import RunningServer
from remote_setup import add_remote
from scripted_upstream import Answer, ScriptedUpstream

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.json"))
KEY = "sk-fixture-key"


def load(path: Path) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads(path.read_text())
    return fixture


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, scripted: ScriptedUpstream) -> Iterator[RunningServer]:
    """One remote model per fixture, each on its own upstream (of the fixture's provider type) at the
    scripted server, its key in an environment variable."""
    store = tmp_path_factory.mktemp("front-hosted")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EDGE_RUNTIME_FIXTURE_KEY", KEY)
        for path in FIXTURES:
            fixture = load(path)
            add_remote(
                store, fixture["client_request"]["body"]["model"], scripted.base_url, provider=fixture["provider"],
                names=(path.stem,), provider_model=fixture["upstream_request"]["body"]["model"],
                api_key_env="EDGE_RUNTIME_FIXTURE_KEY",
                model_type="embedding" if "embeddings" in path.stem else "llm",
            )
        with front_server(store) as server:
            yield server


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_the_request_is_shaped_as_the_provider_documents_it(
    path: Path, front: RunningServer, scripted: ScriptedUpstream
) -> None:
    fixture = load(path)
    scripted.script(Answer(body=fixture["upstream_response"]))
    client_request = fixture["client_request"]
    with front.client() as http, pytest.MonkeyPatch.context() as env:
        env.setenv("EDGE_RUNTIME_FIXTURE_KEY", KEY)
        answer = http.post(client_request["path"], json=client_request["body"])
    assert answer.status_code == 200, answer.text
    (sent,) = scripted.received
    assert sent.path == fixture["upstream_request"]["path"]
    assert sent.body == fixture["upstream_request"]["body"]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    expected = {**fixture["upstream_response"], "model": client_request["body"]["model"]}
    assert answer.json() == expected


REFUSALS = [(p, i) for p in FIXTURES for i in range(len(load(p)["refused"]))]


@pytest.mark.parametrize(("path", "index"), REFUSALS, ids=[f"{p.stem}-{load(p)['refused'][i]['param']}" for p, i in REFUSALS])
def test_what_the_provider_does_not_take_is_a_400_naming_it(
    path: Path, index: int, front: RunningServer, scripted: ScriptedUpstream
) -> None:
    refusal = load(path)["refused"][index]
    scripted.script(Answer(body={}))
    with front.client() as http:
        answer = http.post("/v1/chat/completions", json=refusal["body"])
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == refusal["param"]
    assert scripted.received == []


def test_a_provider_without_completions_or_embeddings_says_so(front: RunningServer) -> None:
    with front.client() as http:
        answer = http.post("/v1/completions", json={"model": "remote-anthropic", "prompt": "x"})
    assert answer.status_code == 400
    assert "has no /completions" in answer.json()["error"]["message"]


def test_native_routes_reach_a_hosted_dialect_translated(front: RunningServer, scripted: ScriptedUpstream) -> None:
    fixture = load(Path(__file__).parent / "fixtures" / "nvidia.json")
    scripted.script(Answer(body=fixture["upstream_response"]))
    schema = fixture["upstream_request"]["body"]["guided_json"]
    with front.client() as http, pytest.MonkeyPatch.context() as env:
        env.setenv("EDGE_RUNTIME_FIXTURE_KEY", KEY)
        answer = http.post(
            "/v1/inference/chat-completion",
            json={"model_id": "remote-nvidia", "messages": [{"role": "user", "content": "Paris?"}],
                  "sampling_params": {"strategy": {"type": "top_p", "temperature": 0.5, "top_p": 0.9}, "max_tokens": 50},
                  "response_format": {"type": "json_schema", "json_schema": schema}},
        )
    assert answer.status_code == 200, answer.text
    assert scripted.received[0].body == {
        "model": "meta/llama-3.1-8b-instruct", "messages": [{"role": "user", "content": "Paris?"}],
        "temperature": 0.5, "top_p": 0.9, "max_tokens": 50, "guided_json": schema,
    }
    body = answer.json()
    assert body["completion_message"]["content"] == fixture["upstream_response"]["choices"][0]["message"]["content"]
    assert body["completion_message"]["stop_reason"] == "end_of_turn"
    assert body["metrics"][2] == {"metric": "total_tokens", "value": 29, "unit": None}
