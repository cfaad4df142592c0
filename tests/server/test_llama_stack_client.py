"""`llama-stack-client` 0.2.x against the native routes on the tiny model."""

from __future__ import annotations

import json

import jsonschema
import pytest
from live_server import TINY_ID, RunningServer
from llama_stack_client import LlamaStackClient, NotFoundError

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 10}, "sunny": {"type": "boolean"}},
    "required": ["city", "sunny"],
    "additionalProperties": False,
}
MESSAGES = [{"role": "system", "content": "You answer."}, {"role": "user", "content": "Weather?"}]


@pytest.fixture()
def client(tiny_server: RunningServer) -> LlamaStackClient:
    return LlamaStackClient(base_url=tiny_server.base_url, max_retries=0)


def _metrics(metrics: object) -> dict[str, float]:
    return {m.metric: m.value for m in metrics or []}  # type: ignore[attr-defined]


def test_completion_and_its_stream_agree(client: LlamaStackClient) -> None:
    params = {"strategy": {"type": "greedy"}, "max_tokens": 10}
    whole = client.inference.completion(model_id=TINY_ID, content="Once upon", sampling_params=params)
    assert whole.stop_reason in ("end_of_turn", "out_of_tokens")
    counts = _metrics(whole.metrics)
    assert counts["total_tokens"] == counts["prompt_tokens"] + counts["completion_tokens"]
    chunks = list(
        client.inference.completion(
            model_id=TINY_ID, content="Once upon", sampling_params=params, stream=True
        )
    )
    assert "".join(c.delta for c in chunks) == whole.content
    assert chunks[-1].delta == "" and chunks[-1].stop_reason == whole.stop_reason
    assert _metrics(chunks[-1].metrics) == counts


def test_chat_completion_stream_event_order(client: LlamaStackClient) -> None:
    params = {"strategy": {"type": "top_p", "temperature": 0.7, "top_p": 0.9}, "max_tokens": 12}
    whole = client.inference.chat_completion(model_id=TINY_ID, messages=MESSAGES, sampling_params=params)
    assert whole.completion_message.role == "assistant"
    events = [
        c.event
        for c in client.inference.chat_completion(
            model_id=TINY_ID, messages=MESSAGES, sampling_params=params, stream=True
        )
    ]
    kinds = [e.event_type for e in events]
    assert kinds[0] == "start" and kinds[-1] == "complete" and set(kinds[1:-1]) <= {"progress"}
    assert events[-1].stop_reason in ("end_of_turn", "out_of_tokens")


def test_logprobs_top_k(client: LlamaStackClient) -> None:
    result = client.inference.completion(
        model_id=TINY_ID,
        content="x y",
        logprobs={"top_k": 2},
        sampling_params={"strategy": {"type": "greedy"}, "max_tokens": 4},
    )
    assert result.logprobs and all(len(lp.logprobs_by_token) == 2 for lp in result.logprobs)


def test_structured_output_json_schema_and_grammar(client: LlamaStackClient) -> None:
    result = client.inference.chat_completion(
        model_id=TINY_ID,
        messages=MESSAGES,
        response_format={"type": "json_schema", "json_schema": SCHEMA},
        sampling_params={"strategy": {"type": "top_k", "top_k": 20}, "max_tokens": 200},
    )
    assert result.completion_message.stop_reason == "end_of_turn"
    jsonschema.validate(json.loads(str(result.completion_message.content)), SCHEMA)
    gbnf = 'root ::= "answer: " ("yes" | "no")'
    picked = client.inference.completion(
        model_id=TINY_ID,
        content="q",
        response_format={"type": "grammar", "bnf": {"grammar": gbnf}},
        sampling_params={"strategy": {"type": "greedy"}, "max_tokens": 20},
    )
    assert picked.content in ("answer: yes", "answer: no")


def test_embeddings(client: LlamaStackClient, tiny_embed_id: str) -> None:
    result = client.inference.embeddings(model_id=tiny_embed_id, contents=["one", "two words"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0]) == len(result.embeddings[1]) > 0
    short = client.inference.embeddings(model_id=tiny_embed_id, contents=["one"], output_dimension=4)
    assert len(short.embeddings[0]) == 4


def test_models_register_list_get_unregister(client: LlamaStackClient) -> None:
    registered = client.models.register(
        model_id="team/tiny-chat", provider_model_id=TINY_ID, model_type="llm", metadata={"purpose": "tests"}
    )
    assert registered.identifier == "team/tiny-chat" and registered.provider_resource_id == TINY_ID
    assert "team/tiny-chat" in [m.identifier for m in client.models.list()]
    fetched = client.models.retrieve("team/tiny-chat")
    assert fetched.metadata["purpose"] == "tests" and fetched.api_model_type == "llm"
    chat = client.inference.chat_completion(
        model_id="team/tiny-chat", messages=MESSAGES, sampling_params={"max_tokens": 3}
    )
    assert chat.completion_message.role == "assistant"
    client.models.unregister("team/tiny-chat")
    with pytest.raises(NotFoundError):
        client.models.retrieve("team/tiny-chat")
