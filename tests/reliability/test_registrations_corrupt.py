"""A registrations file the server cannot read does not stop it: one log line, the file kept aside, the GGUF
store served."""

from __future__ import annotations

from pathlib import Path

import pytest
from live_server import TINY_ID
from serve_process import running_server

from edge_runtime.store import ModelStore

REGISTRATIONS = "api-registrations.json"


@pytest.mark.parametrize(
    "content",
    [
        b'[{"model_id": "a", "stored_id": "tiny", "model_ty',
        b'{"version": 99, "registrations": []}',
    ],
    ids=["truncated-json", "unknown-version"],
)
def test_server_starts_past_a_bad_registrations_file(
    tmp_path: Path, tiny_model_path: Path, content: bytes
) -> None:
    store = tmp_path / "models"
    ModelStore(store).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    (store / REGISTRATIONS).write_bytes(content)
    with running_server(store) as server, server.client() as http:
        assert [m["identifier"] for m in http.get("/v1/models").json()["data"]] == [TINY_ID]
        created = http.post("/v1/models", json={"model_id": "org/alias", "provider_model_id": TINY_ID})
        assert created.status_code == 200
    about_the_file = [line for line in server.lines if REGISTRATIONS in line]
    assert len(about_the_file) == 1, server.output()
    assert "Traceback" not in server.output()
    (aside,) = store.glob(f"{REGISTRATIONS}.corrupt-*")
    assert aside.read_bytes() == content and aside.name in about_the_file[0]
    assert '"version": 1' in (store / REGISTRATIONS).read_text()
