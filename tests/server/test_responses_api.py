"""The OpenAI Responses API through the official `openai` SDK (create, parse, stream, retrieve, delete) against
the real server on the tiny model: structure, validity and statuses, never the (random) model's prose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Literal

import httpx
import jsonschema
import openai
import pytest
from live_server import TINY_ID, RunningServer
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel, Field, TypeAdapter

from edge_runtime.api import responses_types as rt
from edge_runtime.api.translate_responses import ResponseEvents
from edge_runtime.engine.types import TextPiece

PREFIXES = ["/v1", "/v1/openai/v1"]


def _client(server: RunningServer, prefix: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}{prefix}", api_key="unused", max_retries=0)


@pytest.fixture()
def sdk(tiny_server: RunningServer) -> Iterator[openai.OpenAI]:
    with _client(tiny_server) as client:
        yield client


@pytest.mark.parametrize("prefix", PREFIXES)
def test_create_retrieve_delete(tiny_server: RunningServer, prefix: str) -> None:
    with _client(tiny_server, prefix) as sdk:
        _create_retrieve_delete(sdk)
    assert (tiny_server.settings.models_dir / "responses.sqlite3").is_file()  # type: ignore[operator]


def _create_retrieve_delete(sdk: openai.OpenAI) -> None:
    created = sdk.responses.create(model=TINY_ID, input="Hello", max_output_tokens=8, temperature=0)
    assert created.id.startswith("resp_") and created.object == "response" and created.model == TINY_ID
    assert created.status in ("completed", "incomplete")
    (message,) = created.output
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "output_text" and created.output_text == message.content[0].text
    usage = created.usage
    assert usage is not None and usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert 0 < usage.output_tokens <= 8 and created.store is True
    fetched = sdk.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    assert fetched.status == created.status and fetched.usage == created.usage
    sdk.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.delete(created.id)


def test_instructions_and_message_items(sdk: openai.OpenAI) -> None:
    plain = sdk.responses.create(model=TINY_ID, input="Who are you?", max_output_tokens=4)
    items = sdk.responses.create(
        model=TINY_ID,
        instructions="Answer briefly.",
        input=[
            {"role": "developer", "content": "Use plain words."},
            {"role": "user", "content": [{"type": "input_text", "text": "Who are you?"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "A model."}]},
            {"type": "message", "role": "user", "content": "And?"},
        ],
        max_output_tokens=4,
        metadata={"run": "1"},
        user="u-1",
    )
    assert items.instructions == "Answer briefly." and items.metadata == {"run": "1"}
    assert items.usage.input_tokens > plain.usage.input_tokens  # type: ignore[union-attr]
    assert items.output[0].type == "message"


class Color(str, Enum):
    red = "red"
    green = "green"


class Address(BaseModel):
    city: str = Field(max_length=8)
    zip_code: int = Field(ge=0, le=99999)


class Person(BaseModel):
    name: str = Field(max_length=8)
    kind: Literal["cat", "dog"]
    color: Color
    address: Address
    tags: list[Annotated[str, Field(max_length=4)]] = Field(max_length=3)


def test_parse_with_a_pydantic_model(sdk: openai.OpenAI) -> None:
    for seed_input in ("Describe a pet.", "Another pet."):
        parsed = sdk.responses.parse(
            model=TINY_ID, input=seed_input, text_format=Person, max_output_tokens=300, temperature=1.0
        )
        assert parsed.status == "completed"
        person = parsed.output_parsed
        assert isinstance(person, Person)
        Person.model_validate_json(parsed.output_text)
        assert parsed.text is not None and parsed.text.format.type == "json_schema"  # type: ignore[union-attr]


TAGS_SCHEMA = {
    "type": "object",
    "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "uniqueItems": True}},
    "required": ["tags"],
    "additionalProperties": False,
}
"""uniqueItems over strings: no grammar can say it."""


def _tags_format(strict: bool) -> dict[str, object]:
    return {"format": {"type": "json_schema", "name": "tags", "schema": TAGS_SCHEMA, "strict": strict}}


def test_strict_refuses_what_no_grammar_enforces_and_non_strict_names_it(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model=TINY_ID, input="Tags?", text=_tags_format(True))  # type: ignore[arg-type]
    assert "uniqueItems" in str(caught.value) and '"strict": false' in str(caught.value)
    raw = sdk.responses.with_raw_response.create(
        model=TINY_ID, input="Tags?", text=_tags_format(False), max_output_tokens=200  # type: ignore[arg-type]
    )
    assert raw.headers["x-unenforced-schema-keywords"] == "text.format: uniqueItems at #/properties/tags"
    response = raw.parse()
    assert response.status == "completed"
    without_unique = {**TAGS_SCHEMA, "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 4}}}}
    jsonschema.validate(json.loads(response.output_text), without_unique)


WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 10}, "unit": {"enum": ["c", "f"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER_TOOL = {"type": "function", "name": "get_weather", "parameters": WEATHER_PARAMETERS, "strict": True}


def test_a_function_call_then_its_output_with_previous_response_id(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(
        model=TINY_ID,
        input="Weather in Paris?",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        max_output_tokens=200,
        temperature=0,
    )
    assert first.status == "completed"
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and all(call.name == "get_weather" for call in calls)
    for call in calls:
        jsonschema.validate(json.loads(call.arguments), WEATHER_PARAMETERS)
        assert call.call_id
    second = sdk.responses.create(
        model=TINY_ID,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"} for call in calls],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        max_output_tokens=6,
    )
    assert second.previous_response_id == first.id
    assert second.status in ("completed", "incomplete") and second.output
    assert second.usage.input_tokens > first.usage.input_tokens  # type: ignore[union-attr]
    named = sdk.responses.create(
        model=TINY_ID,
        input="Weather?",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        max_output_tokens=200,
        temperature=0,
    )
    assert [item.type for item in named.output] == ["function_call"]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model=TINY_ID, input="Hi", previous_response_id="resp_missing")
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]


TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
SHORT_FORMAT = {
    "format": {
        "type": "json_schema",
        "name": "pick",
        "schema": {
            "type": "object",
            "properties": {"pick": {"enum": ["yes", "no"]}},
            "required": ["pick"],
            "additionalProperties": False,
        },
    }
}


def _collapsed(kinds: list[str]) -> list[str]:
    """The event types with runs of the same type (the deltas) counted once."""
    return [kind for i, kind in enumerate(kinds) if i == 0 or kinds[i - 1] != kind]


def test_streamed_events_in_order_and_the_final_response(sdk: openai.OpenAI) -> None:
    whole = sdk.responses.create(model=TINY_ID, input="Yes?", text=SHORT_FORMAT, temperature=0)  # type: ignore[arg-type]
    with sdk.responses.stream(model=TINY_ID, input="Yes?", text=SHORT_FORMAT, temperature=0) as stream:  # type: ignore[arg-type]
        events = list(stream)
        final = stream.get_final_response()
    assert _collapsed([e.type for e in events]) == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.status == "completed" and final.output_text == deltas == whole.output_text
    assert json.loads(final.output_text)["pick"] in ("yes", "no")
    assert final.usage is not None and final.usage.output_tokens == whole.usage.output_tokens  # type: ignore[union-attr]
    assert sdk.responses.retrieve(final.id).output_text == final.output_text


def test_streamed_function_call(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(
        model=TINY_ID,
        input="Weather?",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=200,
        temperature=0,
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert _collapsed([e.type for e in events]) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    (call,) = final.output
    assert call.type == "function_call" and call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), WEATHER_PARAMETERS)


LONG_FORMAT = {
    "format": {
        "type": "json_schema",
        "name": "long",
        "schema": {"type": "object", "properties": {"s": {"type": "string", "minLength": 60}}, "required": ["s"]},
    }
}
"""At least 60 characters of string: 4 tokens can never finish it."""


def test_max_output_tokens_makes_the_response_incomplete(sdk: openai.OpenAI, tiny_server: RunningServer) -> None:
    cut = sdk.responses.create(model=TINY_ID, input="Go", text=LONG_FORMAT, max_output_tokens=4)  # type: ignore[arg-type]
    assert cut.status == "incomplete" and cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert cut.output[0].status == "incomplete" and cut.usage.output_tokens == 4  # type: ignore[union-attr]
    with tiny_server.client() as http:
        body = {"model": TINY_ID, "input": "Go", "text": LONG_FORMAT, "max_output_tokens": 4, "stream": True}
        with http.stream("POST", "/v1/responses", json=body) as streamed:
            lines = [line for line in streamed.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert names == [d["type"] for d in data] and names[-1] == "response.incomplete"
    assert data[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_store_false_is_not_kept(sdk: openai.OpenAI) -> None:
    unstored = sdk.responses.create(model=TINY_ID, input="Hi", max_output_tokens=2, store=False)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.responses.retrieve(unstored.id)
    assert caught.value.body["code"] == "not_found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        sdk.responses.create(model=TINY_ID, input="Hi", previous_response_id=unstored.id)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"frobnicate": 1}, "frobnicate"),
        ({"reasoning": {"effort": "low"}}, "reasoning"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input"),
        ({"text": {"format": {"type": "json_schema", "name": "a", "schema": {}, "extra": 1}}}, "text"),
    ],
)
def test_unknown_parameters_are_a_400_naming_them(tiny_server: RunningServer, extra: dict[str, object], param: str) -> None:
    with tiny_server.client() as http:
        answer = http.post("/v1/responses", json={"model": TINY_ID, "input": "Hi", **extra})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"].startswith(param) and error["type"] == "invalid_request_error"


def test_unknown_model_is_a_404(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(model="missing", input="Hi")


def test_unknown_response_id_in_the_openai_error_shape(tiny_server: RunningServer) -> None:
    with tiny_server.client() as http:
        for method in ("GET", "DELETE"):
            answer: httpx.Response = http.request(method, "/v1/openai/v1/responses/resp_nope")
            assert answer.status_code == 404
            assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
        document = http.get("/openapi.json").json()
    for prefix in PREFIXES:
        assert set(document["paths"][f"{prefix}/responses/{{response_id}}"]) == {"get", "delete"}
        assert "post" in document["paths"][f"{prefix}/responses"]


def test_an_error_mid_stream_is_an_error_event_then_response_failed() -> None:
    """Every event, the failure path included, is one the SDK's own event types accept."""
    events = ResponseEvents(rt.Response(status="in_progress", model=TINY_ID), None)
    sent = events.start() + list(events.events(TextPiece(index=0, text="Hi", token_ids=[1])))
    sent += events.failure({"error": {"message": "the engine failed", "type": "server_error", "param": None, "code": None}})
    parsed = [TypeAdapter(ResponseStreamEvent).validate_python(event) for event in sent]
    assert [e.type for e in parsed][-2:] == ["error", "response.failed"]
    assert [e.sequence_number for e in parsed] == list(range(len(parsed)))
    failed = parsed[-1]
    assert failed.response.status == "failed" and failed.response.error.message == "the engine failed"  # type: ignore[union-attr]


def test_a_conversation_continues_through_each_turn_even_after_earlier_ones_are_deleted(sdk: openai.OpenAI) -> None:
    """Each stored response keeps the whole conversation before it: turn 3 sees turns 1 and 2, and deleting
    turn 1 does not break continuing from turn 2."""
    # No instructions here: they are not carried over, so a next turn could come out no longer than this one.
    one = sdk.responses.create(model=TINY_ID, input="One", max_output_tokens=3)
    two = sdk.responses.create(model=TINY_ID, previous_response_id=one.id, input="Two", max_output_tokens=3)
    sdk.responses.delete(one.id)
    three = sdk.responses.create(model=TINY_ID, previous_response_id=two.id, input="Three", max_output_tokens=3)
    tokens = [r.usage.input_tokens for r in (one, two, three)]  # type: ignore[union-attr]
    assert tokens == sorted(tokens) and len(set(tokens)) == 3
    assert three.instructions is None and three.previous_response_id == two.id
