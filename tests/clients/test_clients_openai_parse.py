"""openai's `chat.completions.parse(response_format=Model)` and `responses.parse(text_format=Model)` with the
extraction models (nested, enum, Literal, date, constrained ints, EmailStr); tests/server covers the plain
SDK calls."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jsonschema
import openai
import pytest
from extraction_models import HAS_EMAIL_VALIDATOR, MAX_TOKENS, Basket, Item, Link, Person
from live_server import TINY_ID
from pydantic import BaseModel

pytestmark = pytest.mark.clients


@pytest.fixture()
def sdk(openai_base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=openai_base_url, api_key="unused", max_retries=0) as client:
        yield client


def _models() -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [Person, Item, Basket]
    if HAS_EMAIL_VALIDATOR:
        from extraction_models import Contact

        models.append(Contact)
    return models


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_chat_completions_parse(sdk: openai.OpenAI, model: type[BaseModel]) -> None:
    completion = sdk.chat.completions.parse(
        model=TINY_ID,
        messages=[{"role": "user", "content": "Extract the record."}],
        response_format=model,
        max_tokens=MAX_TOKENS,
        temperature=0.7,
        seed=5,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, model)
    model.model_validate_json(choice.message.content or "")


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_responses_parse(sdk: openai.OpenAI, model: type[BaseModel]) -> None:
    response = sdk.responses.parse(
        model=TINY_ID,
        input="Extract the record.",
        text_format=model,
        max_output_tokens=MAX_TOKENS,
        temperature=0.7,
    )
    assert response.status == "completed"
    assert isinstance(response.output_parsed, model)
    model.model_validate_json(response.output_text)


def test_http_url_compiles_strict(sdk: openai.OpenAI) -> None:
    """HttpUrl's schema puts format "uri" and a length range on one string: strict compiles it (a URI whose
    parts share the 2,083 characters), with nothing left unenforced, and what comes out is valid."""
    schema = Link.model_json_schema()
    raw = sdk.chat.completions.with_raw_response.create(
        model=TINY_ID,
        messages=[{"role": "user", "content": "A link."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "Link", "schema": schema, "strict": True},
        },
        max_tokens=MAX_TOKENS,
        seed=5,
    )
    assert "x-unenforced-schema-keywords" not in raw.headers
    choice = raw.parse().choices[0]
    assert choice.finish_reason in ("stop", "length")
    if choice.finish_reason == "stop":
        jsonschema.validate(json.loads(choice.message.content or ""), schema)
