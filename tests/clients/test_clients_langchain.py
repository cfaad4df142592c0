"""langchain-openai's ChatOpenAI `with_structured_output` (json_schema and function_calling), one call and a
`.batch` of three, against the tiny model."""

from __future__ import annotations

import pytest
from extraction_models import MAX_TOKENS, Basket, Person
from live_server import TINY_ID
from pydantic import BaseModel

langchain_openai = pytest.importorskip("langchain_openai")

pytestmark = pytest.mark.clients


def _chat(base_url: str) -> object:
    return langchain_openai.ChatOpenAI(
        base_url=base_url,
        api_key="unused",
        model=TINY_ID,
        max_tokens=MAX_TOKENS,
        temperature=0.7,
        max_retries=0,
    )


FINISHED = {"json_schema": "stop", "function_calling": "tool_calls"}
"""A forced tool call ends by `tool_calls`, as vLLM's does: the call closed, the budget did not cut it."""


def _check(result: dict[str, object], model: type[BaseModel], method: str) -> None:
    """include_raw=True: the parsed object, the raw AIMessage (for its finish reason) and no parsing error."""
    assert result["parsing_error"] is None
    assert isinstance(result["parsed"], model)
    raw = result["raw"]
    assert raw.response_metadata["finish_reason"] == FINISHED[method]  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
@pytest.mark.parametrize("model", [Person, Basket], ids=lambda m: m.__name__)
def test_with_structured_output(openai_base_url: str, method: str, model: type[BaseModel]) -> None:
    structured = _chat(openai_base_url).with_structured_output(model, method=method, include_raw=True)  # type: ignore[attr-defined]
    _check(structured.invoke("Extract the record."), model, method)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_batch_of_three(openai_base_url: str, method: str) -> None:
    structured = _chat(openai_base_url).with_structured_output(Person, method=method, include_raw=True)  # type: ignore[attr-defined]
    results = structured.batch(["First record.", "Second record.", "Third record."])
    assert len(results) == 3
    for result in results:
        _check(result, Person, method)
