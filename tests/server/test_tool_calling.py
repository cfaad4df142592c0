"""Tool calls on the tiny model (random weights): with tool_choice required or named, the grammar makes every
call parse and its arguments validate, on both APIs, streaming and not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import jsonschema
import openai
import pytest
from live_server import TINY_ID, RunningServer
from llama_stack_client import LlamaStackClient

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 12},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "days"],
    "additionalProperties": False,
}
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Forecast", "parameters": WEATHER_SCHEMA},
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Clock",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        },
    },
]
MESSAGES = [{"role": "user", "content": "Weather in Oslo for 2 days?"}]


@pytest.fixture()
def sdk(tiny_server: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{tiny_server.base_url}/v1", api_key="unused", max_retries=0) as client:
        yield client  # closed: see the exit_stack fixture on what an open client does


@pytest.mark.parametrize("seed", [1, 2])
def test_openai_named_tool_choice_yields_a_valid_call(sdk: openai.OpenAI, seed: int) -> None:
    result = sdk.chat.completions.create(
        model=TINY_ID,
        messages=MESSAGES,
        tools=OPENAI_TOOLS,
        seed=seed,
        max_tokens=200,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert calls and all(c.function.name == "get_weather" for c in calls)  # type: ignore[union-attr]
    for call in calls:
        jsonschema.validate(json.loads(call.function.arguments), WEATHER_SCHEMA)  # type: ignore[union-attr]


def test_openai_required_tool_choice_streams_tool_call_deltas(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model=TINY_ID,
        messages=MESSAGES,
        tools=OPENAI_TOOLS,
        seed=4,  # type: ignore[arg-type]
        max_tokens=200,
        tool_choice="required",
        stream=True,
        parallel_tool_calls=False,
    )
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                if delta.function and delta.function.name:
                    names[delta.index] = delta.function.name
                arguments[delta.index] = arguments.get(delta.index, "") + (delta.function.arguments or "")
            finish = choice.finish_reason or finish
    assert finish == "tool_calls" and len(names) == 1
    if names[0] == "get_weather":
        jsonschema.validate(json.loads(arguments[0]), WEATHER_SCHEMA)
    else:
        assert names[0] == "get_time" and json.loads(arguments[0]) == {}


def test_openai_history_with_a_call_and_its_result(sdk: openai.OpenAI) -> None:
    history = MESSAGES + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo", "days": 2}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    result = sdk.chat.completions.create(
        model=TINY_ID,
        messages=history,
        tools=OPENAI_TOOLS,  # type: ignore[arg-type]
        tool_choice="none",
        max_tokens=5,
    )
    assert result.choices[0].message.tool_calls is None


def test_native_required_tool_call_non_streaming_and_streaming(
    tiny_server: RunningServer, exit_stack: ExitStack
) -> None:
    """Boolean parameters keep a call short enough that random weights always finish it within max_tokens."""
    client = exit_stack.enter_context(LlamaStackClient(base_url=tiny_server.base_url, max_retries=0))
    tools = [
        {
            "tool_name": "set_alarm",
            "description": "Alarm",
            "parameters": {
                "loud": {"param_type": "bool", "description": "Ring loudly"},
                "snooze": {"param_type": "bool", "required": False},
            },
        }
    ]
    params = {"strategy": {"type": "top_k", "top_k": 40}, "max_tokens": 300}
    result = client.inference.chat_completion(
        model_id=TINY_ID,
        messages=MESSAGES,
        tools=tools,
        tool_config={"tool_choice": "required"},
        sampling_params=params,
    )
    message = result.completion_message
    assert message.stop_reason == "end_of_message" and message.tool_calls
    for call in message.tool_calls:
        assert call.tool_name == "set_alarm" and isinstance(call.arguments, dict)
        assert isinstance(call.arguments["loud"], bool) and set(call.arguments) <= {"loud", "snooze"}
        assert json.loads(call.arguments_json or "") == call.arguments
    chunks = list(
        client.inference.chat_completion(
            model_id=TINY_ID,
            messages=MESSAGES,
            tools=tools,
            tool_config={"tool_choice": "set_alarm"},
            sampling_params=params,
            stream=True,
        )
    )
    deltas = [c.event.delta for c in chunks if c.event.delta.type == "tool_call"]
    assert deltas[0].parse_status == "succeeded" and deltas[0].tool_call.tool_name == "set_alarm"
    # only a further parallel call that max_tokens cut short may fail to parse: a call with partial arguments
    cut = deltas[-1].parse_status == "failed"
    assert chunks[-1].event.event_type == "complete"
    assert chunks[-1].event.stop_reason == ("out_of_tokens" if cut else "end_of_message")
    for delta in deltas[1:]:
        assert delta.parse_status == "succeeded" or (
            delta.parse_status == "failed" and isinstance(delta.tool_call.arguments, str) and delta is deltas[-1]
        )


@pytest.mark.parametrize("tool_prompt_format", ["json", "function_tag", "python_list"])
def test_native_llama3_formats_make_one_call_per_turn(
    tiny_server: RunningServer, tool_prompt_format: str, exit_stack: ExitStack
) -> None:
    """Llama 3's formats carry one call per turn, as Llama Stack reads them; random weights that like the
    separator used to go on to more calls (up to 96 of one call were seen on a real model)."""
    client = exit_stack.enter_context(LlamaStackClient(base_url=tiny_server.base_url, max_retries=0))
    tools = [{"tool_name": "set_alarm", "parameters": {"loud": {"param_type": "bool"}}}]
    for top_k in (5, 40, 200):
        result = client.inference.chat_completion(
            model_id=TINY_ID,
            messages=MESSAGES,
            tools=tools,
            tool_config={"tool_choice": "required", "tool_prompt_format": tool_prompt_format},
            sampling_params={"strategy": {"type": "top_k", "top_k": top_k}, "max_tokens": 200},
        )
        message = result.completion_message
        assert message.stop_reason == "end_of_message" and len(message.tool_calls) == 1


def test_native_tool_choice_conflicts_are_400(http: httpx.Client) -> None:
    tools = [{"tool_name": "get_weather", "parameters": {}}]
    conflict = http.post(
        "/v1/inference/chat-completion",
        json={
            "model_id": TINY_ID,
            "messages": MESSAGES,
            "tools": tools,
            "tool_choice": "auto",
            "tool_config": {"tool_choice": "required"},
        },
    )
    assert conflict.status_code == 400 and "tool_choice" in conflict.json()["detail"]
    unknown = http.post(
        "/v1/inference/chat-completion",
        json={
            "model_id": TINY_ID,
            "messages": MESSAGES,
            "tools": tools,
            "tool_config": {"tool_choice": "other_tool"},
        },
    )
    assert unknown.status_code == 400 and "other_tool" in unknown.json()["detail"]
