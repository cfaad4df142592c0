"""Admission comes first: with every slot busy and the queue full, a request is shed before the server renders,
tokenizes or compiles anything for it, and the server serves normally once the load is gone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from live_server import (
    TINY_ID,
    RunningServer,
    no_special_tokens_bias,
    post_raw,
    serve,
    tiny_settings,
    wait_for_engine,
)

BAD_GRAMMAR = 'root ::= "a" undefined-rule'
"""Fails in translation (a 400) when the request is admitted: a shed request must not get that far."""


@pytest.fixture(scope="module")
def one_slot_server(tiny_store_dir: Path) -> Iterator[RunningServer]:
    yield from serve(tiny_settings(tiny_store_dir, n_slots=1, queue_size=1, n_ctx=32768))


BAD_REQUESTS = [
    (
        "/v1/chat/completions",
        {"model": TINY_ID, "messages": [{"role": "user", "content": "hi"}], "guided_grammar": BAD_GRAMMAR},
        429,
    ),
    (
        "/v1/completions",
        {"model": TINY_ID, "prompt": ["a", "b"], "guided_grammar": BAD_GRAMMAR},
        429,
    ),
    (
        "/v1/inference/chat-completion",
        {
            "model_id": TINY_ID,
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "grammar", "bnf": BAD_GRAMMAR},
        },
        503,
    ),
]


def test_a_request_that_will_be_shed_is_shed_before_its_translation(
    one_slot_server: RunningServer, tiny_model_path: Path
) -> None:
    long_stream = {
        "model": TINY_ID,
        "prompt": "Count:",
        "stream": True,
        "max_tokens": None,
        "logit_bias": no_special_tokens_bias(tiny_model_path),
    }
    with one_slot_server.client() as http:
        with ExitStack() as holders:
            for busy, queued in ((1, 0), (1, 1)):
                holders.enter_context(post_raw(one_slot_server.base_url, "/v1/completions", long_stream))
                wait_for_engine(http, busy, queued)
            for path, body, overloaded in BAD_REQUESTS:
                shed = http.post(path, json=body)
                assert shed.status_code == overloaded, shed.text
                assert shed.headers["retry-after"] == "1"
            wait_for_engine(http, 1, 1)
        wait_for_engine(http, 0, 0)
        for path, body, _ in BAD_REQUESTS:
            assert http.post(path, json=body).status_code == 400
        served = http.post("/v1/completions", json={"model": TINY_ID, "prompt": "ok", "max_tokens": 3})
        assert served.status_code == 200
