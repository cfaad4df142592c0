"""How many alternatives per token a request may ask for: at most 20 on every route (as OpenAI caps
top_logprobs), a 400 naming the field above; native `logprobs.top_k` was unbounded (the whole vocabulary per
token: 124 MB for 16 tokens)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from live_server import TINY_ID

from edge_runtime.api.native_types import TOP_LOGPROBS_LIMIT

LIMIT = 20
N_TOKENS = 4


def _native(top_k: int) -> dict[str, Any]:
    return {
        "model_id": TINY_ID,
        "content": "hello",
        "sampling_params": {"max_tokens": N_TOKENS},
        "logprobs": {"top_k": top_k},
    }


def test_the_limit_is_openais() -> None:
    assert TOP_LOGPROBS_LIMIT == LIMIT


@pytest.mark.parametrize("path", ["/v1/inference/completion", "/v1/inference/chat-completion"])
def test_native_top_k_above_the_limit_is_a_400_naming_it(http: httpx.Client, path: str) -> None:
    body = _native(LIMIT + 1)
    if path.endswith("chat-completion"):
        body["messages"] = [{"role": "user", "content": body.pop("content")}]
    answer = http.post(path, json=body)
    assert answer.status_code == 400, answer.text
    errors = answer.json()["error"]["detail"]["errors"]
    assert [e["loc"] for e in errors] == [["body", "logprobs", "top_k"]]
    assert "20" in errors[0]["msg"]


def test_native_top_k_at_the_limit_answers_that_many(http: httpx.Client) -> None:
    answer = http.post("/v1/inference/completion", json=_native(LIMIT))
    assert answer.status_code == 200, answer.text
    logprobs = answer.json()["logprobs"]
    assert logprobs and all(len(token["logprobs_by_token"]) <= LIMIT for token in logprobs)
    assert max(len(token["logprobs_by_token"]) for token in logprobs) > 1


@pytest.mark.parametrize(
    ("path", "extra", "param"),
    [
        ("/v1/chat/completions", {"logprobs": True, "top_logprobs": LIMIT + 1}, "top_logprobs"),
        ("/v1/completions", {"logprobs": LIMIT + 1}, "logprobs"),
        ("/v1/completions", {"prompt_logprobs": LIMIT + 1}, "prompt_logprobs"),
    ],
)
def test_openai_logprob_counts_are_capped(
    http: httpx.Client, path: str, extra: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"model": TINY_ID, "max_tokens": N_TOKENS, **extra}
    if "chat" in path:
        body["messages"] = [{"role": "user", "content": "hello"}]
    else:
        body["prompt"] = "hello"
    answer = http.post(path, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    at_limit = {k: (LIMIT if v == LIMIT + 1 else v) for k, v in extra.items()}
    assert http.post(path, json={**body, **at_limit}).status_code == 200
