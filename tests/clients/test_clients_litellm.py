"""litellm's `completion(model="openai/...", api_base=..., response_format=Model)` against the tiny model:
litellm turns the pydantic model into a strict json_schema response format."""

from __future__ import annotations

import pytest
from conftest import LITELLM_READONLY_WARNING
from extraction_models import Basket, Person
from live_server import TINY_ID
from pydantic import BaseModel

litellm = pytest.importorskip("litellm")

pytestmark = [
    pytest.mark.clients,
    pytest.mark.filterwarnings(LITELLM_READONLY_WARNING),
    pytest.mark.usefixtures("close_the_event_loops_litellm_leaves"),
]


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
