"""Statuses say what happened: 405 carries `Allow`, a too-long prompt names the field it came from, and
/openapi.json documents every error status a route answers, with a schema the real error bodies satisfy."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest
from live_server import TINY_ID, RunningServer


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/models", "GET, HEAD, POST"),
        ("POST", "/v1/health", "GET, HEAD"),
        ("GET", "/v1/chat/completions", "POST"),
        ("PATCH", "/v1/models/tiny", "DELETE, GET, HEAD"),
    ],
)
def test_405_carries_allow(http: httpx.Client, method: str, path: str, allow: str) -> None:
    response = http.request(method, path, json={})
    assert response.status_code == 405
    assert response.headers["allow"] == allow


def test_a_too_long_prompt_names_the_field_it_came_from(http: httpx.Client, tiny_server: RunningServer) -> None:
    n_tokens = 2 * (tiny_server.settings.n_ctx or 256)
    completion = http.post(
        "/v1/completions", json={"model": TINY_ID, "prompt": [1, 2] * n_tokens, "max_tokens": 4}
    )
    assert completion.status_code == 400
    assert completion.json()["error"]["code"] == "context_length_exceeded"
    assert completion.json()["error"]["param"] == "prompt"
    chat = http.post(
        "/v1/chat/completions",
        json={"model": TINY_ID, "messages": [{"role": "user", "content": "a b " * n_tokens}], "max_tokens": 4},
    )
    assert chat.status_code == 400 and chat.json()["error"]["param"] == "messages"


def _validator(document: dict[str, Any], path: str, method: str, status: int) -> jsonschema.Validator:
    """The documented body schema of one response, its `#/components/...` references resolvable."""
    response = document["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({"components": document["components"], **schema})


def test_openapi_documents_the_error_statuses_with_the_family_schema(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    paths = document["paths"]
    expected = {
        ("/v1/inference/chat-completion", "post"): {"400", "401", "403", "413", "415", "503"},
        ("/v1/chat/completions", "post"): {"400", "401", "403", "404", "413", "415", "429", "503"},
        ("/v1/openai/v1/completions", "post"): {"400", "401", "403", "404", "413", "415", "429", "503"},
        ("/v1/models", "post"): {"400", "401", "403", "413", "415", "507"},
        ("/v1/models/{model_id}", "get"): {"401", "403", "404"},
        ("/v1/models/{model_id}", "delete"): {"401", "403", "404"},
        ("/v1/health", "get"): {"403"},
    }
    for (path, method), statuses in expected.items():
        assert set(paths[path][method]["responses"]) == {"200", *statuses}, (path, method)
    assert "Retry-After" in paths["/v1/chat/completions"]["post"]["responses"]["429"]["headers"]

    # The bodies the server really answers satisfy the documented schemas.
    chat = "/v1/chat/completions"
    native_chat = "/v1/inference/chat-completion"
    unknown_model = {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
    cases: list[tuple[str, str, int, httpx.Response]] = [
        (chat, "post", 404, http.post(chat, json=unknown_model)),
        (chat, "post", 400, http.post(chat, json={"model": TINY_ID})),
        (native_chat, "post", 400, http.post(native_chat, json={})),
        (native_chat, "post", 415, http.post(native_chat, content=b"{}", headers={"content-type": "text/plain"})),
        ("/v1/models/{model_id}", "get", 404, http.get("/v1/models/nope")),
        ("/v1/health", "get", 403, http.get("/v1/health", headers={"host": "rebound.example"})),
    ]
    for path, method, status, response in cases:
        assert response.status_code == status, (path, status, response.text)
        _validator(document, path, method, status).validate(response.json())
