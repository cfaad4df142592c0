"""The wire types' unknown-field policies, defaults and serialization (no server needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge_runtime.api import native_types as nt
from edge_runtime.api import openai_types as ot


def test_native_request_ignores_unknown_keys_and_discriminates_messages() -> None:
    request = nt.ChatCompletionRequest.model_validate(
        {
            "model_id": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}], "unknown": 1},
                {"role": "assistant", "content": "ok", "stop_reason": "end_of_turn"},
                {"role": "tool", "call_id": "c1", "tool_name": "get_weather", "content": "sunny"},
            ],
            "client_extra": {"x": 1},
        }
    )
    assert [type(m) for m in request.messages] == [
        nt.SystemMessage,
        nt.UserMessage,
        nt.CompletionMessage,
        nt.ToolResponseMessage,
    ]


def test_native_sampling_defaults_and_strategies() -> None:
    params = nt.SamplingParams()
    assert isinstance(params.strategy, nt.GreedySamplingStrategy)
    assert params.max_tokens == 0 and params.repetition_penalty == 1.0 and params.stop is None
    top_p = nt.SamplingParams.model_validate({"strategy": {"type": "top_p", "temperature": 0.7}})
    assert isinstance(top_p.strategy, nt.TopPSamplingStrategy) and top_p.strategy.top_p == 0.95
    with pytest.raises(ValidationError):
        nt.SamplingParams.model_validate({"strategy": {"type": "top_p"}})
    with pytest.raises(ValidationError):
        nt.SamplingParams.model_validate({"strategy": {"type": "top_k", "top_k": 0}})


def test_native_response_serializes_every_field_with_nulls() -> None:
    response = nt.CompletionResponse(metrics=[], content="x", stop_reason="end_of_turn")
    assert response.model_dump(mode="json") == {
        "metrics": [],
        "content": "x",
        "stop_reason": "end_of_turn",
        "logprobs": None,
    }


def test_openai_unknown_parameter_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as caught:
        ot.ChatCompletionRequest.model_validate(
            {"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high"}
        )
    (error,) = caught.value.errors()
    assert error["type"] == "extra_forbidden" and error["loc"] == ("reasoning_effort",)


def test_openai_chat_accepts_every_documented_message_shape() -> None:
    request = ot.ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "rules"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c", "content": "42"},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "n", "schema": {"type": "object"}},
            },
            "stream_options": {"include_usage": True},
        }
    )
    assert isinstance(request.response_format, ot.ResponseFormatJSONSchema)
    assert request.response_format.json_schema.schema_ == {"type": "object"}


def test_openai_completion_prompt_forms() -> None:
    for prompt in ("text", ["a", "b"], [1, 2, 3], [[1, 2], [3]]):
        assert ot.CompletionRequest(model="m", prompt=prompt).prompt == prompt
