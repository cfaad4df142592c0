"""A store file truncated under a loaded model (as root may do, whatever its mode): the server lives on.

The weights are read into memory at load, so the loaded model keeps answering from memory; a mapped file
would have ended the process with SIGBUS on the next request, with nothing logged.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from serve_process import serve_process

from edge_runtime.store import ModelStore

MODEL_ID = "tiny"


def _truncate_as_this_user(path: Path) -> None:
    """What a careless user does: make the file writable if the mode stops them (root needs not), truncate it."""
    if os.geteuid() != 0:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    os.truncate(path, 0)


def test_truncating_a_loaded_model_file_leaves_the_server_serving(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    store = ModelStore(tmp_path)
    stored = store.path_of(store.import_model(tiny_model_path, model_id=MODEL_ID))
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444, "stored files are read-only"
    request = {"model_id": MODEL_ID, "content": "hello", "sampling_params": {"max_tokens": 8}}
    with (
        serve_process(tmp_path, "--model", MODEL_ID, "--slots", "1", "--ctx", "256") as server,
        server.client() as http,
    ):
        before = http.post("/v1/inference/completion", json=request)
        assert before.status_code == 200, before.text

        _truncate_as_this_user(stored)

        after = http.post("/v1/inference/completion", json=request)
        assert server.alive(), f"the server died (exit {server.process.poll()})"
        assert after.status_code == 200, after.text
        assert after.json()["content"] == before.json()["content"]  # greedy, from the weights in memory
        assert http.get("/v1/health").status_code == 200
        assert [m["identifier"] for m in http.get("/v1/models").json()["data"]] == [MODEL_ID]
