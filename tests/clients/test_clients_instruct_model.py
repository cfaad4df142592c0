"""The client libraries on a real instruct model (SmolLM2-135M-Instruct, its own ChatML template): the tiny
model's weights are random, so only here does a library meet a model that reads the document it is given.
Each test asserts what a library user relies on (the parsed object validates, the answer ended by `stop` or
a closed tool call, never by the token budget), never what the model wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import openai
import pytest
from conftest import LITELLM_READONLY_WARNING
from live_server import RunningServer, serve, tiny_settings
from pydantic import BaseModel, Field

from edge_runtime.store import ModelStore

langchain_openai = pytest.importorskip("langchain_openai")
litellm = pytest.importorskip("litellm")

pytestmark = [
    pytest.mark.clients,
    pytest.mark.smollm2,
    pytest.mark.filterwarnings(LITELLM_READONLY_WARNING),
    pytest.mark.usefixtures("close_the_event_loops_litellm_leaves"),
]
MODEL_ID = "smollm2-135m"
MAX_TOKENS = 700
"""Above the longest answer the grammar allows for Invoice (its strings, numbers, list and whitespace are bounded)."""
DOCUMENT = (
    "Invoice 1042 from Harbor Tools Ltd, Bristol. Customer: Ana Lima, aged 34. "
    "Items: 3 hammers, 2 saws, 1 ladder. Paid in full on 2026-03-14."
)
INSTRUCTION = "Extract the record from this document as JSON.\n\n" + DOCUMENT


Text = Annotated[str, Field(max_length=40)]


class Line(BaseModel):
    product: Text
    quantity: Annotated[int, Field(ge=0, le=999)]


class Invoice(BaseModel):
    """Every string, number and list is bounded, as an extraction script for a 135M model bounds them: the
    grammar then ends every answer within MAX_TOKENS, whatever the model writes on this CPU. Unbounded, SmolLM2
    repeats the last line item, or a name, until max_tokens at temperature 0 (the model's loop; the grammar
    lets the list end after any item)."""

    number: Annotated[int, Field(ge=0, le=99999)]
    seller: Text
    customer: Text
    customer_age: Annotated[int, Field(ge=0, le=120)]
    lines: Annotated[list[Line], Field(max_length=4)]
    paid: bool


@pytest.fixture(scope="module")
def instruct_base_url(tmp_path_factory: pytest.TempPathFactory, smollm2_model_path: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("instruct-clients")
    ModelStore(root).import_model(smollm2_model_path, model_id=MODEL_ID)
    server: RunningServer
    for server in serve(tiny_settings(root, preload=(MODEL_ID,), n_slots=2, n_ctx=2048)):
        yield f"{server.base_url}/v1"


@pytest.fixture()
def sdk(instruct_base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=instruct_base_url, api_key="unused", max_retries=0) as client:
        yield client


def test_openai_chat_parse(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.parse(
        model=MODEL_ID,
        messages=[{"role": "user", "content": INSTRUCTION}],
        response_format=Invoice,
        max_tokens=MAX_TOKENS,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, Invoice)


def test_openai_responses_parse(sdk: openai.OpenAI) -> None:
    response = sdk.responses.parse(
        model=MODEL_ID, input=INSTRUCTION, text_format=Invoice, max_output_tokens=MAX_TOKENS, temperature=0
    )
    assert response.status == "completed"
    assert isinstance(response.output_parsed, Invoice)


@pytest.mark.parametrize(("method", "finished"), [("json_schema", "stop"), ("function_calling", "tool_calls")])
def test_langchain_structured_output_batch(instruct_base_url: str, method: str, finished: str) -> None:
    chat = langchain_openai.ChatOpenAI(
        base_url=instruct_base_url,
        api_key="unused",
        model=MODEL_ID,
        max_tokens=MAX_TOKENS,
        temperature=0,
        max_retries=0,
    )
    structured = chat.with_structured_output(Invoice, method=method, include_raw=True)
    results = structured.batch([INSTRUCTION, INSTRUCTION.replace("Ana Lima", "Tom Reed")])
    for result in results:
        assert result["parsing_error"] is None
        assert isinstance(result["parsed"], Invoice)
        assert result["raw"].response_metadata["finish_reason"] == finished


def test_litellm_response_format(instruct_base_url: str) -> None:
    response = litellm.completion(
        model=f"openai/{MODEL_ID}",
        api_base=instruct_base_url,
        api_key="unused",
        messages=[{"role": "user", "content": INSTRUCTION}],
        response_format=Invoice,
        max_tokens=MAX_TOKENS,
        temperature=0,
        num_retries=0,
    )
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    Invoice.model_validate_json(choice.message.content)
