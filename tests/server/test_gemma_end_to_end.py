"""End to end on the real Gemma 3 270M: both families, streaming, and a schema-constrained answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import openai
import pytest
from live_server import RunningServer, serve, tiny_settings
from llama_stack_client import LlamaStackClient

from edge_runtime.store import ModelStore

GEMMA_ID = "gemma"
SCHEMA = {
    "type": "object",
    "properties": {
        "capital": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
    },
    "required": ["capital", "country"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def gemma_server(tmp_path_factory: pytest.TempPathFactory, gemma_model_path: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("gemma-store")
    ModelStore(root).import_model(gemma_model_path, model_id=GEMMA_ID, link=True)
    yield from serve(tiny_settings(root, preload=(GEMMA_ID,), n_slots=2, n_ctx=1024, queue_size=4))


@pytest.mark.gemma
def test_gemma_answers_on_both_apis(gemma_server: RunningServer) -> None:
    sdk = openai.OpenAI(base_url=f"{gemma_server.base_url}/v1", api_key="unused", max_retries=0)
    answer = sdk.chat.completions.create(
        model=GEMMA_ID,
        temperature=0,
        max_tokens=120,
        messages=[{"role": "user", "content": "Give the capital of France as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "capital", "schema": SCHEMA}},
    )
    data = json.loads(answer.choices[0].message.content or "")
    jsonschema.validate(data, SCHEMA)
    assert "paris" in data["capital"].lower()

    client = LlamaStackClient(base_url=gemma_server.base_url, max_retries=0)
    chunks = list(
        client.inference.chat_completion(
            model_id=GEMMA_ID,
            messages=[{"role": "user", "content": "Say hello in one word."}],
            sampling_params={"strategy": {"type": "greedy"}, "max_tokens": 16},
            stream=True,
        )
    )
    text = "".join(c.event.delta.text for c in chunks if c.event.delta.type == "text")
    assert chunks[0].event.event_type == "start" and chunks[-1].event.event_type == "complete"
    assert text.strip() and "<end_of_turn>" not in text
