"""End to end on the real models, Gemma 3 270M (a base model, no chat template in its GGUF) and
SmolLM2-135M-Instruct (an instruct model with its own ChatML template): both API families, streaming, a
schema-constrained answer, a forced tool call and embeddings. Nothing here pins a model's prose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import jsonschema
import openai
import pytest
from live_server import RunningServer, serve, tiny_settings
from llama_stack_client import LlamaStackClient

from edge_runtime.store import ModelStore

MODEL_ID = "real"
SCHEMA = {
    "type": "object",
    "properties": {
        "capital": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
    },
    "required": ["capital", "country"],
}
END_MARKERS = ("<end_of_turn>", "<|im_end|>", "<|im_start|>", "<eos>")


@pytest.fixture(
    scope="module",
    params=[pytest.param("gemma", marks=pytest.mark.gemma), pytest.param("smollm2", marks=pytest.mark.smollm2)],
)
def real_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    model_path: Path = request.getfixturevalue(f"{request.param}_model_path")
    root = tmp_path_factory.mktemp(f"{request.param}-store")
    ModelStore(root).import_model(model_path, model_id=MODEL_ID)
    yield from serve(tiny_settings(root, preload=(MODEL_ID,), n_slots=2, n_ctx=1024, queue_size=4))


def test_answers_on_both_apis(real_server: RunningServer, exit_stack: ExitStack) -> None:
    sdk = exit_stack.enter_context(
        openai.OpenAI(base_url=f"{real_server.base_url}/v1", api_key="unused", max_retries=0)
    )
    answer = sdk.chat.completions.create(
        model=MODEL_ID,
        temperature=0,
        max_tokens=120,
        messages=[{"role": "user", "content": "Give the capital of France as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "capital", "schema": SCHEMA}},
    )
    data = json.loads(answer.choices[0].message.content or "")
    jsonschema.validate(data, SCHEMA)
    assert set(data) == {"capital", "country"}
    assert answer.choices[0].finish_reason == "stop"

    client = exit_stack.enter_context(LlamaStackClient(base_url=real_server.base_url, max_retries=0))
    chunks = list(
        client.inference.chat_completion(
            model_id=MODEL_ID,
            messages=[{"role": "user", "content": "Say hello in one word."}],
            sampling_params={"strategy": {"type": "greedy"}, "max_tokens": 16},
            stream=True,
        )
    )
    text = "".join(c.event.delta.text for c in chunks if c.event.delta.type == "text")
    assert chunks[0].event.event_type == "start" and chunks[-1].event.event_type == "complete"
    assert text.strip() and not any(marker in text for marker in END_MARKERS)


def test_forced_tool_call_validates(real_server: RunningServer, exit_stack: ExitStack) -> None:
    """A named tool_choice on the real model: the call parses and its arguments validate, streamed or not.
    One call (parallel_tool_calls false): with parallel calls the model goes on to a second call that
    max_tokens cuts, and a turn cut by max_tokens finishes by length, not tool_calls."""
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 30}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
    }
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": parameters}}]
    messages = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
    choice = {"type": "function", "function": {"name": "get_weather"}}
    sdk = exit_stack.enter_context(
        openai.OpenAI(base_url=f"{real_server.base_url}/v1", api_key="unused", max_retries=0)
    )
    request = {
        "model": MODEL_ID,
        "temperature": 0,
        "max_tokens": 80,
        "messages": messages,
        "tools": tools,
        "tool_choice": choice,
        "parallel_tool_calls": False,
    }
    answer = sdk.chat.completions.create(**request)  # type: ignore[call-overload]
    assert answer.choices[0].finish_reason == "tool_calls"
    (call,) = answer.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, parameters)
    assert set(arguments) == {"city", "unit"}

    with sdk.chat.completions.stream(**request) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    (streamed,) = final.choices[0].message.tool_calls or []
    assert streamed.function.name == "get_weather"
    assert json.loads(streamed.function.arguments) == arguments


def test_embeddings_from_the_same_file(real_server: RunningServer, exit_stack: ExitStack) -> None:
    """One GGUF serves text and, registered once more as an embedding model, vectors of its width."""
    with real_server.client() as http:
        registered = http.post(
            "/v1/models",
            json={"model_id": "real-embed", "provider_model_id": MODEL_ID, "model_type": "embedding"},
        )
        assert registered.status_code == 200, registered.text
        width = registered.json()["metadata"]["embedding_dimension"]
    sdk = exit_stack.enter_context(
        openai.OpenAI(base_url=f"{real_server.base_url}/v1", api_key="unused", max_retries=0)
    )
    vectors = sdk.embeddings.create(model="real-embed", input=["The cat sat.", "Stock prices fell."])
    assert [len(d.embedding) for d in vectors.data] == [width, width]
    for item in vectors.data:
        assert sum(x * x for x in item.embedding) == pytest.approx(1.0, rel=1e-4)
    assert vectors.data[0].embedding != vectors.data[1].embedding
