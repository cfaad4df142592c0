"""litellm's `completion(model="openai/...", api_base=..., response_format=Model)` against the tiny model:
litellm turns the pydantic model into a strict json_schema response format."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from extraction_models import Basket, Person
from live_server import TINY_ID
from pydantic import BaseModel

litellm = pytest.importorskip("litellm")

pytestmark = [
    pytest.mark.clients,
    # litellm's own TypedDicts use ReadOnly, which pydantic warns about when litellm builds adapters for them.
    pytest.mark.filterwarnings("ignore:.*using the `ReadOnly` qualifier:UserWarning"),
]


@pytest.fixture(scope="module", autouse=True)
def close_the_event_loops_litellm_leaves() -> Iterator[None]:
    """litellm leaves an event loop open that it no longer runs; collected during a later test, its
    ResourceWarning failed that test (tests/engine under `make test`). It is closed here, after this module."""
    yield
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.AbstractEventLoop) and not obj.is_running() and not obj.is_closed():
            obj.close()


@pytest.mark.parametrize("model", [Person, Basket], ids=lambda m: m.__name__)
def test_completion_with_a_pydantic_response_format(openai_base_url: str, model: type[BaseModel]) -> None:
    response = litellm.completion(
        model=f"openai/{TINY_ID}",
        api_base=openai_base_url,
        api_key="unused",
        messages=[{"role": "user", "content": "Extract the record."}],
        response_format=model,
        max_tokens=400,
        temperature=0.7,
        num_retries=0,
    )
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    model.model_validate_json(choice.message.content)
