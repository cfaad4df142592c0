"""A model whose chat template is hostile (endless loops, a string bomb): the server answers 400 naming the
template, keeps serving every model, and its own memory does not grow by what the template tried to build."""

from __future__ import annotations

from pathlib import Path

import httpx
from serve_process import serve_process

from edge_runtime.store import ModelStore

GOOD, LOOPING, BOMB = "tiny", "tiny-looping", "tiny-bomb"
TEMPLATES = {
    LOOPING: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x",
    BOMB: "{% set s = 'a' * 1600000000 %}x",
}
SERVER_GROWTH_BOUND = 64 * 2**20
"""Peak RSS the server may gain over the hostile requests: request handling and logging, never the templates'
gigabytes (the bomb built 1.6 GB per request inside the server before templates rendered out of process)."""
REQUEST_TIMEOUT_S = 60.0
"""Only so that a server that hangs fails the test instead of hanging it; no timing is asserted."""


def _chat(http: httpx.Client, model: str) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
        timeout=REQUEST_TIMEOUT_S,
    )


def test_hostile_templates_are_400s_and_the_server_keeps_serving(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    store = ModelStore(tmp_path)
    for model_id in (GOOD, *TEMPLATES):
        store.import_model(tiny_model_path, model_id=model_id, link=True)
    for model_id, template in TEMPLATES.items():
        store.set_chat_template_override(model_id, template)

    models = [arg for model_id in (GOOD, *TEMPLATES) for arg in ("--model", model_id)]
    with serve_process(tmp_path, *models, "--slots", "1", "--ctx", "256") as server, server.client() as http:
        assert _chat(http, GOOD).status_code == 200
        baseline = server.peak_rss_bytes()

        for model_id in (BOMB, LOOPING):
            answer = _chat(http, model_id)
            assert answer.status_code == 400, answer.text
            error = answer.json()["error"]
            assert error["message"].startswith("the model's chat template override "), error
        native = http.post(
            "/v1/inference/chat-completion",
            json={"model_id": BOMB, "messages": [{"role": "user", "content": "hi"}]},
            timeout=REQUEST_TIMEOUT_S,
        )
        assert native.status_code == 400 and "chat template" in native.json()["detail"]

        assert server.alive()
        assert _chat(http, GOOD).status_code == 200
        assert http.get("/v1/health").status_code == 200
        assert server.peak_rss_bytes() - baseline < SERVER_GROWTH_BOUND
