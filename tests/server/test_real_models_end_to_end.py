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
    assert answer.choices[0].finish_reason == "stop"

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


@pytest.mark.gemma
def test_gemma_forced_tool_call_validates(gemma_server: RunningServer) -> None:
    """A named tool_choice on the real model: the call parses and its arguments validate, streamed or not."""
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 30}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    }
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": parameters}}]
    messages = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
    choice = {"type": "function", "function": {"name": "get_weather"}}
    sdk = openai.OpenAI(base_url=f"{gemma_server.base_url}/v1", api_key="unused", max_retries=0)
    answer = sdk.chat.completions.create(
        model=GEMMA_ID, temperature=0, max_tokens=80, messages=messages, tools=tools, tool_choice=choice
    )
    assert answer.choices[0].finish_reason == "tool_calls"
    (call,) = answer.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), parameters)

    with sdk.chat.completions.stream(
        model=GEMMA_ID, temperature=0, max_tokens=80, messages=messages, tools=tools, tool_choice=choice
    ) as stream:
        final = stream.get_final_completion()
    (streamed,) = final.choices[0].message.tool_calls or []
    assert streamed.function.name == "get_weather"
    assert json.loads(streamed.function.arguments) == json.loads(call.function.arguments)
