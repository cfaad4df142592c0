"""A large schema compiling on the server does not stop the streams already running.

Compiling runs in the request's worker thread with the cycle collector paused (grammar/collector.py), and
the first mask of the new grammar is computed there too, not on the scheduler thread that decodes every
stream; the C lowering of its rules releases the GIL. The schema is generated, like the real-world corpus'
slower schemas.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
from live_server import TINY_ID, RunningServer, no_special_tokens_bias


def slow_schema(n_definitions: int = 80, n_properties: int = 12) -> dict[str, Any]:
    """Objects referring to one another through arrays and anyOf, like a Kubernetes schema: about 85 KB, half
    a second to compile on one core of the machine this was written on, 0.1 s since grammars are lowered in C
    (the schema walk, in Python, is most of it). Unique per call (a `$comment`), so it is never a cache hit."""
    definitions: dict[str, Any] = {}
    for index in range(n_definitions):
        properties: dict[str, Any] = {}
        for number in range(n_properties):
            name = f"property_{index:03d}_{number:02d}_description"
            following = f"#/$defs/d{(index + 1 + number % 7) % n_definitions}"
            properties[name] = [
                {"type": "string", "maxLength": 40},
                {"type": "integer", "minimum": -index, "maximum": 1000 + number},
                {"type": "array", "items": {"$ref": following}},
                {"anyOf": [{"type": "null"}, {"$ref": following}]},
            ][number % 4]
        definitions[f"d{index}"] = {
            "type": "object",
            "properties": properties,
            "required": [next(iter(properties))],
        }
    return {"$comment": uuid.uuid4().hex, "$defs": definitions, "$ref": "#/$defs/d0"}


def test_a_stream_keeps_producing_tokens_while_a_large_schema_compiles(
    tiny_server: RunningServer, tiny_model_path: Path
) -> None:
    schema = slow_schema()
    arrived: list[int] = []
    """Tokens of the running stream so far, when the compiling request was sent and when it answered."""
    outcome: list[httpx.Response] = []
    streamed = 0

    def compile_on_the_server() -> None:
        with tiny_server.client() as http:
            arrived.append(streamed)
            outcome.append(
                http.post(
                    "/v1/chat/completions",
                    json={
                        "model": TINY_ID,
                        "messages": [{"role": "user", "content": "Fill the form."}],
                        "max_tokens": 1,
                        "response_format": {
                            "type": "json_schema",
                            "json_schema": {"name": "form", "schema": schema, "strict": True},
                        },
                    },
                )
            )
            arrived.append(streamed)

    body = {
        "model": TINY_ID,
        "prompt": "Go",
        "stream": True,
        "max_tokens": 900,
        "logit_bias": no_special_tokens_bias(tiny_model_path),
    }
    compiling = threading.Thread(target=compile_on_the_server)
    with tiny_server.client() as http, http.stream("POST", "/v1/completions", json=body) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if not line.startswith("data: {"):
                continue
            if json.loads(line[len("data: ") :])["choices"][0]["text"]:
                streamed += 1
            if streamed == 5 and not compiling.ident:  # once: an event with no text leaves the count at 5
                compiling.start()
            if len(arrived) == 2:
                break  # the compiling request has answered while this stream was still running
        if compiling.ident:
            compiling.join()
    assert outcome and outcome[0].status_code == 200, outcome[0].text if outcome else "no answer"
    assert len(arrived) == 2, "the stream ended before the compiling request answered"
    at_send, at_answer = arrived
    assert at_answer - at_send >= 2, (
        f"the stream produced {at_answer - at_send} tokens while the schema compiled"
    )
