"""Raw HTTP against a real uvicorn: info routes, models, status codes and error shapes of both families."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import httpx
import openai
import pytest
from live_server import MAX_BODY_BYTES, TINY_ID, RunningServer, metric

from edge_runtime.store import read_gguf_header

OPENAI_PREFIXES = ("/v1/openai/v1", "/v1")


def test_health_version_providers(http: httpx.Client) -> None:
    assert http.get("/v1/health").json() == {"status": "OK"}
    assert isinstance(http.get("/v1/version").json()["version"], str)
    (provider,) = http.get("/v1/providers").json()["data"]
    assert provider["api"] == "inference" and provider["provider_id"] == "edge-runtime"
    assert {"provider_type", "config"} <= set(provider)
    assert "/" not in json.dumps(provider["config"]), "a client has no use for a server path"


def test_models_list_is_native_and_openai_at_once(
    http: httpx.Client, tiny_server: RunningServer, exit_stack: ExitStack
) -> None:
    body = http.get("/v1/models").json()
    assert body["object"] == "list"
    tiny = next(m for m in body["data"] if m["identifier"] == TINY_ID)
    assert tiny["type"] == "model" and tiny["model_type"] == "llm" and tiny["provider_id"] == "edge-runtime"
    assert tiny["metadata"]["architecture"] == "llama" and tiny["metadata"]["context_length"] > 0
    assert len(tiny["metadata"]["sha256"]) == 64
    assert tiny["id"] == TINY_ID and tiny["object"] == "model" and isinstance(tiny["created"], int)
    sdk = exit_stack.enter_context(openai.OpenAI(base_url=f"{tiny_server.base_url}/v1", api_key="unused"))
    assert TINY_ID in [m.id for m in sdk.models.list()]
    assert sdk.models.retrieve(TINY_ID).id == TINY_ID
    pure = http.get("/v1/openai/v1/models").json()
    assert pure["object"] == "list" and set(pure["data"][0]) == {"id", "object", "created", "owned_by"}


def test_unknown_model_is_404_on_get_and_400_or_404_in_inference(http: httpx.Client) -> None:
    assert http.get("/v1/models/no/such-model").status_code == 404
    assert http.get("/v1/models/no/such-model").json() == {"detail": "model 'no/such-model' not found"}
    native = http.post("/v1/inference/completion", json={"model_id": "nope", "content": "hi"})
    assert native.status_code == 400 and "nope" in native.json()["detail"]
    for prefix in OPENAI_PREFIXES:
        response = http.post(f"{prefix}/completions", json={"model": "nope", "prompt": "hi"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "model_not_found"


def test_register_get_unregister_an_id_with_a_slash(http: httpx.Client) -> None:
    created = http.post("/v1/models", json={"model_id": "org/tiny-alias", "provider_model_id": TINY_ID})
    assert created.status_code == 200, created.text
    assert (
        created.json()["identifier"] == "org/tiny-alias" and created.json()["provider_resource_id"] == TINY_ID
    )
    assert http.get("/v1/models/org/tiny-alias").json()["model_type"] == "llm"
    assert http.delete("/v1/models/org/tiny-alias").json() is None
    assert http.get("/v1/models/org/tiny-alias").status_code == 404
    assert http.delete(f"/v1/models/{TINY_ID}").status_code == 403


def test_native_validation_error_shape(http: httpx.Client) -> None:
    response = http.post("/v1/inference/completion", json={"content": "hi"})
    assert response.status_code == 400
    (error,) = response.json()["error"]["detail"]["errors"]
    assert error["loc"] == ["body", "model_id"] and error["msg"] and error["type"] == "missing"
    bad_json = http.post(
        "/v1/inference/completion", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and "errors" in bad_json.json()["error"]["detail"]


@pytest.mark.parametrize("prefix", OPENAI_PREFIXES)
def test_openai_unknown_and_unsupported_parameters_are_named(http: httpx.Client, prefix: str) -> None:
    unknown = http.post(
        f"{prefix}/chat/completions",
        json={"model": TINY_ID, "messages": [{"role": "user", "content": "hi"}], "frobnicate": True},
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "frobnicate"
    suffix = http.post(f"{prefix}/completions", json={"model": TINY_ID, "prompt": "hi", "suffix": "x"})
    assert suffix.status_code == 400 and suffix.json()["error"]["param"] == "suffix"
    bias = http.post(
        f"{prefix}/completions", json={"model": TINY_ID, "prompt": "hi", "logit_bias": {"999999": 1}}
    )
    assert bias.status_code == 400 and bias.json()["error"]["param"] == "logit_bias"


def test_invalid_grammar_and_schema_are_400_with_the_engine_message(http: httpx.Client) -> None:
    grammar = http.post(
        "/v1/inference/completion",
        json={
            "model_id": TINY_ID,
            "content": "x",
            "response_format": {"type": "grammar", "bnf": {"grammar": "root ::= ("}},
        },
    )
    assert grammar.status_code == 400 and grammar.json()["detail"]
    schema = http.post(
        "/v1/openai/v1/chat/completions",
        json={
            "model": TINY_ID,
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "s", "strict": True, "schema": {"type": "array", "uniqueItems": True}},
            },
        },
    )
    assert schema.status_code == 400 and "uniqueItems" in schema.json()["error"]["message"]


def test_prompt_longer_than_the_context_is_400(http: httpx.Client, tiny_server: RunningServer) -> None:
    long_prompt = list(range(1, 3)) * (tiny_server.settings.n_ctx or 256)
    response = http.post("/v1/completions", json={"model": TINY_ID, "prompt": long_prompt, "max_tokens": 4})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_wrong_model_type_is_400(http: httpx.Client) -> None:
    response = http.post("/v1/inference/embeddings", json={"model_id": TINY_ID, "contents": ["x"]})
    assert response.status_code == 400 and "llm" in response.json()["detail"]


def test_body_over_the_limit_is_413(http: httpx.Client) -> None:
    big = "x" * (MAX_BODY_BYTES + 1)
    response = http.post("/v1/inference/completion", json={"model_id": TINY_ID, "content": big})
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    chunked = http.post(
        "/v1/completions",
        content=iter([b'{"model": "tiny", "prompt": "', big.encode(), b'"}']),
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413 and "limit" in chunked.json()["error"]["message"]


def test_image_content_is_refused_by_a_text_model(http: httpx.Client) -> None:
    response = http.post(
        "/v1/inference/chat-completion",
        json={
            "model_id": TINY_ID,
            "messages": [
                {"role": "user", "content": [{"type": "image", "image": {"url": {"uri": "http://x/y.png"}}}]}
            ],
        },
    )
    assert response.status_code == 400 and "text only" in response.json()["detail"]


def test_unknown_path_answers_in_the_family_shape(http: httpx.Client) -> None:
    assert http.get("/v1/nothing-here").json() == {
        "detail": "no route GET /v1/nothing-here (GET /openapi.json lists the routes)"
    }
    assert http.get("/v1/openai/v1/nothing").json()["error"]["code"] == "not_found"


def test_openapi_and_metrics(http: httpx.Client) -> None:
    http.post(
        "/v1/inference/completion",
        json={"model_id": TINY_ID, "content": "hello", "sampling_params": {"max_tokens": 3}},
    ).raise_for_status()
    document = http.get("/openapi.json").json()
    assert (
        "/v1/inference/chat-completion" in document["paths"] and "/v1/chat/completions" in document["paths"]
    )
    assert "SamplingParams" in document["components"]["schemas"]
    text = http.get("/metrics").text
    assert 'edge_runtime_requests_total{route="/v1/inference/completion",status="200"}' in text
    assert 'edge_runtime_generated_tokens_total{model="tiny"}' in text
    assert "edge_runtime_time_to_first_token_seconds_bucket" in text
    assert "edge_runtime_busy_slots" in text and "edge_runtime_queue_depth" in text


def test_responses_carry_a_request_id(http: httpx.Client) -> None:
    first, second = http.get("/v1/health"), http.get("/v1/health")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_grammar_mask_times_reach_metrics(http: httpx.Client, tiny_model_path: Path) -> None:
    """The engine reports each grammar mask's time in a generation's last event; the server observes them. An
    end-of-sequence token pushed to the top is refused until a choice is whole, so at least one mask is needed."""
    eos = int(read_gguf_header(tiny_model_path).metadata["tokenizer.ggml.eos_token_id"])
    before = metric(http, "edge_runtime_grammar_mask_seconds_count")
    response = http.post(
        "/v1/completions",
        json={
            "model": TINY_ID,
            "prompt": "The capital of France is",
            "guided_choice": ["Paris", "Berlin"],
            "logit_bias": {str(eos): 100},
            "temperature": 0,
            "max_tokens": 10,
        },
    )
    assert response.status_code == 200 and response.json()["choices"][0]["text"] in ("Paris", "Berlin")
    assert metric(http, "edge_runtime_grammar_mask_seconds_count") >= before + 1
