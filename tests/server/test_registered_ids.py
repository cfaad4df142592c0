"""`POST /v1/models` ids are checked like imported ones: no path that climbs or starts at /, no control
characters; Llama Stack's `org/Name-1B` ids pass."""

from __future__ import annotations

import httpx
import pytest
from live_server import TINY_ID


@pytest.mark.parametrize(
    "model_id",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "a\nb",
        "tab\there",
        "",
        "a//b",
        "org/../x",
        "trailing/",
        ".hidden",
        "x" * 257,
    ],
)
def test_invalid_ids_are_a_400_naming_model_id(http: httpx.Client, model_id: str) -> None:
    answer = http.post("/v1/models", json={"model_id": model_id, "provider_model_id": TINY_ID})
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"].startswith("model_id: invalid id")
    assert model_id not in {m["identifier"] for m in http.get("/v1/models").json()["data"]}


def test_llama_stack_ids_are_accepted(http: httpx.Client) -> None:
    model_id = "meta-llama/Llama-3.2-1B-Instruct:q4_k_m"
    created = http.post("/v1/models", json={"model_id": model_id, "provider_model_id": TINY_ID})
    assert created.status_code == 200
    assert http.get(f"/v1/models/{model_id}").status_code == 200
    assert http.delete(f"/v1/models/{model_id}").status_code == 200
