"""Tool calls cut off by max_tokens, and tool-call arguments streamed as they are generated, through the
official clients on the tiny model. The grammar forces the calls. The cut-off tool has four required
parameters whose names no merge of the tiny vocabulary covers (24 tokens each, so at least 96 tokens of
arguments), while the call's opening takes at most ~70 tokens even written one character at a time: with
max_tokens 80 the call is always cut inside its arguments, whatever the random weights prefer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import jsonschema
import openai
import pytest
from live_server import TINY_ID, RunningServer
from llama_stack_client import LlamaStackClient

MESSAGES: list[Any] = [{"role": "user", "content": "Who is Ada?"}]
LONG_NAMES = [("qzxjvkwp"[i:] + "qzxjvkwp"[:i]) * 3 for i in range(4)]
LONG_ARGUMENTS = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in LONG_NAMES},
    "required": LONG_NAMES,
    "additionalProperties": False,
}
CUT_TOOLS: list[Any] = [{"type": "function", "function": {"name": "Person", "parameters": LONG_ARGUMENTS}}]
CUT_MAX_TOKENS = 80
SHORT_ARGUMENTS = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer", "maximum": 150}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
SHORT_TOOLS: list[Any] = [{"type": "function", "function": {"name": "Person", "parameters": SHORT_ARGUMENTS}}]


@pytest.fixture()
def sdk(tiny_server: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{tiny_server.base_url}/v1", api_key="unused", max_retries=0) as client:
        yield client  # closed: see the exit_stack fixture on what an open client does


def test_openai_cut_off_call_is_a_call_with_partial_arguments(sdk: openai.OpenAI) -> None:
    result = sdk.chat.completions.create(
        model=TINY_ID, messages=MESSAGES, tools=CUT_TOOLS, tool_choice="required", max_tokens=CUT_MAX_TOKENS, seed=1
    )
    choice = result.choices[0]
    assert choice.finish_reason == "length"
    assert "<tool" not in (choice.message.content or "")
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "Person"  # type: ignore[union-attr]
    assert call.function.arguments.startswith("{")  # type: ignore[union-attr]


def test_openai_streamed_cut_off_call_arrives_in_argument_fragments(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model=TINY_ID,
        messages=MESSAGES,
        tools=CUT_TOOLS,
        tool_choice="required",
        max_tokens=CUT_MAX_TOKENS,
        seed=2,
        stream=True,
    )
    content, fragments, finish = "", [], None
    first = None
    for chunk in stream:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                assert delta.index == 0
                if first is None:
                    first = delta
                else:
                    assert delta.id is None and delta.function is not None and delta.function.name is None
                fragments.append(delta.function.arguments if delta.function else "")
    assert first is not None and first.id and first.type == "function"
    assert first.function is not None and first.function.name == "Person"
    assert finish == "length" and "<tool" not in content
    assert sum(1 for fragment in fragments if fragment) > 1
    assert "".join(fragments).startswith("{")


def test_openai_stream_helper_accumulates_streamed_arguments(sdk: openai.OpenAI) -> None:
    """`chat.completions.stream` (what instructor's partial mode reads) sees the arguments grow piece by
    piece, and its final message holds them whole."""
    fragments: list[str] = []
    with sdk.chat.completions.stream(
        model=TINY_ID,
        messages=MESSAGES,
        tools=SHORT_TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=300,
        seed=3,
    ) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                fragments.append(event.arguments_delta)
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert len([f for f in fragments if f]) > 1
    assert "".join(fragments) == call.function.arguments  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), SHORT_ARGUMENTS)  # type: ignore[union-attr]


def test_responses_stream_function_call_arguments_in_fragments(sdk: openai.OpenAI) -> None:
    tools: list[Any] = [{"type": "function", "name": "Person", "parameters": SHORT_ARGUMENTS, "strict": True}]
    deltas: list[str] = []
    done = None
    for event in sdk.responses.create(
        model=TINY_ID,
        input="Who is Ada?",
        tools=tools,
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=300,
        stream=True,
    ):
        if event.type == "response.function_call_arguments.delta":
            deltas.append(event.delta)
        elif event.type == "response.function_call_arguments.done":
            done = event.arguments
        elif event.type == "response.completed":
            calls = [item for item in event.response.output if item.type == "function_call"]
            assert calls and calls[0].arguments == done  # type: ignore[union-attr]
    assert done is not None and len([d for d in deltas if d]) > 1 and "".join(deltas).startswith(done)
    jsonschema.validate(json.loads(done), SHORT_ARGUMENTS)


NATIVE_TOOLS: list[Any] = [
    {"tool_name": "Person", "parameters": {name: {"param_type": "str"} for name in LONG_NAMES}}
]


def test_native_cut_off_call_is_a_call_and_out_of_tokens(tiny_server: RunningServer, exit_stack: ExitStack) -> None:
    client = exit_stack.enter_context(LlamaStackClient(base_url=tiny_server.base_url, max_retries=0))
    request: Any = {
        "model_id": TINY_ID,
        "messages": MESSAGES,
        "tools": NATIVE_TOOLS,
        "tool_config": {"tool_choice": "required"},
        "sampling_params": {"strategy": {"type": "top_k", "top_k": 40}, "max_tokens": CUT_MAX_TOKENS},
    }
    message = client.inference.chat_completion(**request).completion_message
    assert message.stop_reason == "out_of_tokens"
    assert "<tool" not in str(message.content)
    (call,) = message.tool_calls
    assert call.tool_name == "Person" and isinstance(call.arguments, str) and call.arguments.startswith("{")
    chunks = list(client.inference.chat_completion(**request, stream=True))
    assert chunks[-1].event.event_type == "complete" and chunks[-1].event.stop_reason == "out_of_tokens"
    text = "".join(c.event.delta.text for c in chunks if c.event.delta.type == "text")
    assert "<tool" not in text
    (delta,) = [c.event.delta for c in chunks if c.event.delta.type == "tool_call"]
    assert delta.parse_status == "failed" and not isinstance(delta.tool_call, str)
    assert delta.tool_call.tool_name == "Person" and isinstance(delta.tool_call.arguments, str)
