"""Remote models on llama-cpp-python's own OpenAI server (the llama-server dialect): both route families,
streamed and not, structured output, tools, logprobs, usage and metrics, and the 400s a dialect causes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import front_server
from live_server import RunningServer
from remote_setup import add_remote
from upstream_processes import UpstreamProcess

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 6}}, "required": ["city"]},
    },
}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, llama_upstream: UpstreamProcess) -> Iterator[RunningServer]:
    store = tmp_path_factory.mktemp("front")
    add_remote(store, "far", llama_upstream.base_url, provider="llama-server", provider_model="tiny-upstream")
    add_remote(store, "plain", llama_upstream.base_url, provider="openai-compat", names=("plain-up",))
    with front_server(store) as server:
        yield server


def events(response: httpx.Response) -> list[object]:
    payloads = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    return [payload if payload == "[DONE]" else json.loads(payload) for payload in payloads]


def metric(http: httpx.Client, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in http.get("/metrics").text.splitlines() if line.startswith(prefix))


def test_chat_is_proxied_with_our_model_id_and_the_upstreams_usage_counted(http: httpx.Client) -> None:
    before = metric(http, 'edge_runtime_prompt_tokens_total{model="far"}')
    answer = http.post("/v1/chat/completions", json={"model": "far", "messages": HI, "max_tokens": 6})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "far"
    assert body["usage"]["completion_tokens"] >= 1
    assert metric(http, 'edge_runtime_prompt_tokens_total{model="far"}') == before + body["usage"]["prompt_tokens"]
    assert metric(http, 'edge_runtime_upstream_requests_total{upstream="llama-server-127.0.0.1') >= 1


def test_streamed_chat_passes_chunks_and_ends_with_done(http: httpx.Client) -> None:
    answer = http.post("/v1/openai/v1/chat/completions", json={"model": "far", "messages": HI, "max_tokens": 6, "stream": True})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    chunks = events(answer)
    assert chunks[-1] == "[DONE]"
    assert all(chunk["model"] == "far" for chunk in chunks[:-1])  # type: ignore[index]
    assert chunks[-2]["choices"][0]["finish_reason"] in ("length", "stop")  # type: ignore[index]


def test_json_schema_is_sent_in_the_dialect_and_the_answer_validates(http: httpx.Client) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA, "strict": True}}
    answer = http.post(
        "/v1/chat/completions", json={"model": "far", "messages": HI, "max_tokens": 40, "response_format": response_format}
    )
    assert answer.status_code == 200, answer.text
    assert set(json.loads(answer.json()["choices"][0]["message"]["content"])) == {"ok"}


@pytest.mark.parametrize("stream", [False, True])
def test_guided_choice_and_grammar_become_the_dialects_grammar(http: httpx.Client, stream: bool) -> None:
    choice = http.post(
        "/v1/completions",
        json={"model": "far", "prompt": "x", "max_tokens": 8, "guided_choice": ["left", "right"], "stream": stream},
    )
    grammar = http.post(
        "/v1/chat/completions",
        json={"model": "far", "messages": HI, "max_tokens": 8, "guided_grammar": 'root ::= "yes" | "no"', "stream": stream},
    )
    assert choice.status_code == grammar.status_code == 200
    if stream:
        texts = ["".join(c["choices"][0].get("text") or "" for c in events(choice)[:-1]),  # type: ignore[index]
                 "".join(c["choices"][0]["delta"].get("content") or "" for c in events(grammar)[:-1])]  # type: ignore[index]
    else:
        texts = [choice.json()["choices"][0]["text"], grammar.json()["choices"][0]["message"]["content"]]
    assert texts[0] in ("left", "right")
    assert texts[1] in ("yes", "no")


def test_output_that_breaks_the_schema_is_a_502_not_an_answer(http: httpx.Client) -> None:
    """On completions the dialect sends `json_schema`, which llama-cpp-python's server does not read: its
    unconstrained text is caught (stop strings end it early: an answer cut off by max_tokens is not checked)."""
    stop = ["e", "a", "i", "o", "n", " "]
    answer = http.post(
        "/v1/completions",
        json={"model": "far", "prompt": "x", "max_tokens": 16, "stop": stop, "guided_json": {"type": "integer"}},
    )
    if answer.status_code == 200:  # the tiny model wrote digits only: valid, and said so
        assert isinstance(json.loads(answer.json()["choices"][0]["text"]), int)
        return
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream_bad_output"


def test_named_tool_choice_comes_back_as_a_call(http: httpx.Client) -> None:
    answer = http.post(
        "/v1/chat/completions",
        json={"model": "far", "messages": HI, "max_tokens": 60, "tools": [TOOL],
              "tool_choice": {"type": "function", "function": {"name": "lookup"}}},
    )
    assert answer.status_code == 200, answer.text
    (call,) = answer.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "lookup"
    assert set(json.loads(call["function"]["arguments"])) == {"city"}


def test_parameters_the_dialect_does_not_take_are_a_400_naming_them(http: httpx.Client) -> None:
    refused = http.post(
        "/v1/chat/completions", json={"model": "plain", "messages": HI, "top_k": 5, "min_p": 0.1}
    )
    grammar = http.post(
        "/v1/chat/completions", json={"model": "plain", "messages": HI, "guided_grammar": 'root ::= "a"'}
    )
    prompt_logprobs = http.post("/v1/completions", json={"model": "far", "prompt": "x", "prompt_logprobs": 1})
    assert refused.status_code == grammar.status_code == prompt_logprobs.status_code == 400
    assert refused.json()["error"]["param"] == "min_p"
    assert "'min_p', 'top_k'" in refused.json()["error"]["message"]
    assert grammar.json()["error"]["param"] == "guided_grammar"
    assert "cannot enforce a GBNF grammar" in grammar.json()["error"]["message"]
    assert prompt_logprobs.json()["error"]["param"] == "prompt_logprobs"


def test_native_chat_with_logprobs(http: httpx.Client) -> None:
    answer = http.post(
        "/v1/inference/chat-completion",
        json={"model_id": "far", "messages": HI, "sampling_params": {"max_tokens": 5}, "logprobs": {"top_k": 2}},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["completion_message"]["stop_reason"] in ("out_of_tokens", "end_of_turn")
    assert len(body["logprobs"]) == 5
    assert all(len(entry["logprobs_by_token"]) <= 2 for entry in body["logprobs"])
    assert {m["metric"] for m in body["metrics"]} == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_native_streams_in_native_order_with_the_tool_call_before_complete(http: httpx.Client) -> None:
    tool = {"tool_name": "lookup", "parameters": {"city": {"param_type": "string"}}}
    answer = http.post(
        "/v1/inference/chat-completion",
        json={"model_id": "far", "messages": HI, "sampling_params": {"max_tokens": 60}, "tools": [tool],
              "tool_choice": "lookup", "stream": True},
    )
    assert answer.status_code == 200
    kinds = [e["event"]["event_type"] for e in events(answer)]  # type: ignore[index]
    assert kinds[0] == "start" and kinds[-1] == "complete" and set(kinds[1:-1]) <= {"progress"}
    last, complete = events(answer)[-2:]
    assert last["event"]["delta"]["type"] == "tool_call"  # type: ignore[index]
    call = last["event"]["delta"]["tool_call"]  # type: ignore[index]
    assert call["tool_name"] == "lookup"
    if last["event"]["delta"]["parse_status"] == "succeeded":  # type: ignore[index]
        assert complete["event"]["stop_reason"] == "end_of_message"  # type: ignore[index]


def test_native_completion_streamed_ends_with_the_stop_reason(http: httpx.Client) -> None:
    answer = http.post(
        "/v1/inference/completion",
        json={"model_id": "far", "content": "x", "sampling_params": {"max_tokens": 4}, "stream": True},
    )
    chunks = events(answer)
    assert chunks[-1]["stop_reason"] == "out_of_tokens"  # type: ignore[index]
    assert all(chunk["stop_reason"] is None for chunk in chunks[:-1])  # type: ignore[index]


def test_native_refusals_name_the_native_parameter(http: httpx.Client) -> None:
    answer = http.post(
        "/v1/inference/chat-completion",
        json={"model_id": "plain", "messages": HI, "response_format": {"type": "grammar", "bnf": 'root ::= "a"'}},
    )
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("response_format:")


def test_the_responses_api_refuses_a_remote_model(http: httpx.Client) -> None:
    answer = http.post("/v1/responses", json={"model": "far", "input": "hi"})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "model"


def test_remote_models_are_listed_with_their_provider(http: httpx.Client, front: RunningServer) -> None:
    native = {m["identifier"]: m for m in http.get("/v1/models").json()["data"]}
    openai = {m["id"]: m for m in http.get("/v1/openai/v1/models").json()["data"]}
    assert native["far"]["provider_id"].startswith("llama-server-")
    assert native["far"]["provider_resource_id"] == "tiny-upstream"
    assert native["plain"]["provider_id"] == "plain-up"
    assert openai["plain"]["owned_by"] == "plain-up"
    assert http.get("/v1/openai/v1/models/far").json()["id"] == "far"
    providers = {p["provider_id"]: p for p in http.get("/v1/providers").json()["data"]}
    assert providers["plain-up"]["provider_type"] == "remote::openai-compat"


def test_models_list_and_show_print_remote_models(front: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_runtime.cli import main

    store = str(Path(front.settings.models_dir or "."))
    assert main(["--models-dir", store, "models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "REMOTE ID" in listing and "far" in listing and "plain-up" in listing
    assert main(["--models-dir", store, "models", "show", "plain"]) == 0
    assert "upstream 1:" in capsys.readouterr().out


def test_the_access_log_carries_the_remote_model_and_the_upstreams_usage(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_runtime")
    answer = http.post("/v1/chat/completions", json={"model": "far", "messages": HI, "max_tokens": 3})
    usage, request_id = answer.json()["usage"], answer.headers["x-request-id"]
    deadline = time.monotonic() + 10  # the line is written just after the response ends
    while not (lines := [r.getMessage() for r in caplog.records if f"request_id={request_id}" in r.getMessage()]):
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.02)
    (line,) = lines
    assert "model=far" in line and "status=200" in line
    assert f"prompt_tokens={usage['prompt_tokens']} completion_tokens={usage['completion_tokens']}" in line


def test_our_api_key_guards_remote_models_too(tmp_path: Path, llama_upstream: UpstreamProcess) -> None:
    add_remote(tmp_path, "far", llama_upstream.base_url, provider="llama-server")
    with front_server(tmp_path, api_keys=("our-key",)) as server, server.client() as client:
        refused = client.post("/v1/chat/completions", json={"model": "far", "messages": HI, "max_tokens": 2})
        allowed = client.post(
            "/v1/chat/completions", json={"model": "far", "messages": HI, "max_tokens": 2},
            headers={"authorization": "Bearer our-key"},
        )
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert allowed.status_code == 200
