"""A board serving another: remote models on a second edge-runtime process (the passthrough dialect), its
embeddings on both route families, its errors passed on in our shapes, and failover when an upstream dies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import front_server
from live_server import TINY_ID, RunningServer
from remote_setup import add_remote
from upstream_processes import UpstreamProcess, llama_cpp_server

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, edge_upstream: UpstreamProcess) -> Iterator[RunningServer]:
    store = tmp_path_factory.mktemp("front-edge")
    root = edge_upstream.base_url.removesuffix("/v1")
    view = {"model_id": "tiny-embed", "provider_model_id": TINY_ID, "model_type": "embedding"}
    assert httpx.post(f"{root}/v1/models", json=view, timeout=30).status_code == 200
    add_remote(store, "board", edge_upstream.base_url, provider="edge-runtime", provider_model=TINY_ID)
    add_remote(store, "board-embed", edge_upstream.base_url, provider="edge-runtime", provider_model="tiny-embed",
               model_type="embedding")
    add_remote(store, "ghost", edge_upstream.base_url, provider="edge-runtime", provider_model="no-such-model")
    with front_server(store) as server:
        yield server


def test_every_structured_form_passes_through_to_another_edge_runtime(http: httpx.Client) -> None:
    answer = http.post(
        "/v1/chat/completions",
        json={"model": "board", "messages": HI, "max_tokens": 8, "guided_choice": ["red", "blue"], "top_k": 3},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] in ("red", "blue")
    assert answer.json()["model"] == "board"


def test_embeddings_on_both_families(http: httpx.Client) -> None:
    openai = http.post("/v1/embeddings", json={"model": "board-embed", "input": ["a", "b c"]})
    native = http.post("/v1/inference/embeddings", json={"model_id": "board-embed", "contents": ["a", "b c"]})
    assert openai.status_code == native.status_code == 200, (openai.text, native.text)
    vectors = [item["embedding"] for item in openai.json()["data"]]
    assert len(vectors) == 2 and len(vectors[0]) > 0
    assert native.json()["embeddings"] == vectors
    assert openai.json()["model"] == "board-embed"


def test_an_llm_id_refuses_embeddings_and_an_embedding_id_refuses_chat(http: httpx.Client) -> None:
    assert http.post("/v1/embeddings", json={"model": "board", "input": "a"}).json()["error"]["code"] == (
        "wrong_model_type"
    )
    chat = http.post("/v1/chat/completions", json={"model": "board-embed", "messages": HI})
    assert chat.status_code == 400


def test_the_upstreams_refusal_reaches_the_client_in_our_shape(http: httpx.Client) -> None:
    openai = http.post("/v1/chat/completions", json={"model": "ghost", "messages": HI})
    native = http.post("/v1/inference/chat-completion", json={"model_id": "ghost", "messages": HI})
    assert openai.status_code == 404
    assert openai.json()["error"]["code"] == "upstream_rejected"
    assert "no-such-model" in openai.json()["error"]["message"]
    assert native.status_code == 404 and "no-such-model" in native.json()["detail"]


def test_native_chat_with_a_schema_on_the_passthrough(http: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 9}}, "required": ["n"]}
    answer = http.post(
        "/v1/inference/chat-completion",
        json={"model_id": "board", "messages": HI, "sampling_params": {"max_tokens": 30},
              "response_format": {"type": "json_schema", "json_schema": schema}},
    )
    assert answer.status_code == 200, answer.text
    assert set(json.loads(answer.json()["completion_message"]["content"])) == {"n"}


def test_failover_when_an_upstream_is_killed_mid_run(
    tmp_path: Path, tiny_model_path: Path, edge_upstream: UpstreamProcess
) -> None:
    """Two upstreams for one id, in order (llama-cpp-python's server, then the edge-runtime process; it reads
    no model name): with the first killed between requests the second answers, streamed or not, and the first
    is reported down in /v1/health and /metrics."""
    with llama_cpp_server(tiny_model_path) as first:
        add_remote(tmp_path, "pair", first.base_url, edge_upstream.base_url, provider="llama-server",
                   provider_model=TINY_ID, names=("first", "second"))
        with front_server(tmp_path) as front, front.client() as http:
            body = {"model": "pair", "messages": HI, "max_tokens": 4}
            assert http.post("/v1/chat/completions", json=body).status_code == 200
            first.kill()
            for stream in (False, True):
                answer = http.post("/v1/chat/completions", json={**body, "stream": stream})
                assert answer.status_code == 200, answer.text
            assert http.get("/v1/health").json()["upstreams"]["first"]["status"] == "Error"
            metrics = http.get("/metrics").text
            assert 'edge_runtime_upstream_up{upstream="first"} 0' in metrics
            assert 'edge_runtime_upstream_up{upstream="second"} 1' in metrics
            assert 'edge_runtime_upstream_requests_total{upstream="first",outcome="unreachable"}' in metrics
