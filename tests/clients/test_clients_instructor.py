"""instructor (TOOLS and JSON_SCHEMA modes, `create_iterable`) on the official SDK against the tiny model.
instructor pins jiter<0.15, which openai 3.57 cannot share: this module runs in its own venv
(`make test-instructor`, .venv-clients with the openai release instructor accepts) and is skipped elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from extraction_models import MAX_TOKENS, Basket, Item, Person
from live_server import TINY_ID
from pydantic import BaseModel, ValidationError

instructor = pytest.importorskip("instructor")

pytestmark = pytest.mark.clients
MESSAGES = [{"role": "user", "content": "Extract the records."}]
FINISHED = {"TOOLS": "tool_calls", "JSON_SCHEMA": "stop"}
"""A forced tool call ends by `tool_calls`, as vLLM's does: the call closed, the budget did not cut it."""


@pytest.fixture()
def sdk(openai_base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=openai_base_url, api_key="unused", max_retries=0) as client:
        yield client


@pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA"])
@pytest.mark.parametrize("model", [Person, Basket], ids=lambda m: m.__name__)
def test_create_with_completion(sdk: openai.OpenAI, mode: str, model: type[BaseModel]) -> None:
    client = instructor.from_openai(sdk, mode=instructor.Mode[mode])
    parsed, completion = client.chat.completions.create_with_completion(
        model=TINY_ID,
        messages=MESSAGES,
        response_model=model,
        max_retries=1,  # one attempt: instructor would re-ask on a validation error and hide it
        max_tokens=MAX_TOKENS,
        temperature=0.7,
    )
    assert isinstance(parsed, model)
    assert completion.choices[0].finish_reason == FINISHED[mode]


class RecordingTransport(httpx.BaseTransport):
    """Keeps each response body, so a test can read the finish reasons of a stream the library consumed."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        body = response.read()
        self.bodies.append(body)
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

    def close(self) -> None:
        self.inner.close()


def _streamed_choices(body: bytes) -> list[dict[str, Any]]:
    events = [line[len(b"data: ") :] for line in body.splitlines() if line.startswith(b"data: {")]
    return [choice for event in events for choice in json.loads(event)["choices"]]


def _streamed_answer(choices: list[dict[str, Any]]) -> str:
    """The streamed text: the content, or the arguments of the (one) tool call."""
    deltas = [c["delta"] for c in choices]
    content = "".join(d.get("content") or "" for d in deltas)
    calls = [call for d in deltas for call in d.get("tool_calls") or []]
    return content + "".join(call["function"].get("arguments") or "" for call in calls)


@pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA"])
def test_create_iterable(openai_base_url: str, mode: str) -> None:
    """create_iterable streams a list wrapper ({"tasks": [...]}) and yields each item as it closes."""
    transport = RecordingTransport()
    with httpx.Client(transport=transport) as http:
        sdk = openai.OpenAI(base_url=openai_base_url, api_key="unused", max_retries=0, http_client=http)
        client = instructor.from_openai(sdk, mode=instructor.Mode[mode])
        try:
            items = list(
                client.chat.completions.create_iterable(
                    model=TINY_ID,
                    messages=MESSAGES,
                    response_model=Item,
                    max_retries=1,
                    max_tokens=MAX_TOKENS,
                )
            )
        except ValidationError:
            items = None
    assert len(transport.bodies) == 1
    choices = _streamed_choices(transport.bodies[0])
    assert [c["finish_reason"] for c in choices if c["finish_reason"]] == [FINISHED[mode]]
    if items is None:
        # The wrapper's "tasks" is not required, so `{}` is a valid answer, which instructor reads as one
        # Item without its fields: a quirk of instructor's, not of the answer.
        assert json.loads(_streamed_answer(choices)) == {}
        pytest.xfail("instructor reads the schema-valid empty wrapper {} as an Item")
    assert all(isinstance(item, Item) for item in items)
