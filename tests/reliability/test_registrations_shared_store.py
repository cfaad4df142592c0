"""Two `serve` processes on one store: every acknowledged registration is seen by both and survives a
restart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from live_server import TINY_ID
from serve_process import ServeProcess, running_server

from edge_runtime.store import ModelStore

N_REGISTRATIONS = 40


def _register(server: ServeProcess, model_id: str) -> int:
    with server.client() as http:
        body = {"model_id": model_id, "provider_model_id": TINY_ID}
        return http.post("/v1/models", json=body).status_code


def _identifiers(http: httpx.Client) -> set[str]:
    return {model["identifier"] for model in http.get("/v1/models").json()["data"]}


def test_concurrent_registrations_on_two_servers_are_all_kept(tmp_path: Path, tiny_model_path: Path) -> None:
    store = tmp_path / "models"
    ModelStore(store).import_model(tiny_model_path, model_id=TINY_ID, link=True)
    ids = [f"team/alias-{n}" for n in range(N_REGISTRATIONS)]
    with running_server(store) as first, running_server(store) as second:
        servers = [first, second]
        with ThreadPoolExecutor(N_REGISTRATIONS) as pool:
            statuses = list(pool.map(lambda n: _register(servers[n % 2], ids[n]), range(N_REGISTRATIONS)))
        acknowledged = {model_id for model_id, status in zip(ids, statuses) if status == 200}
        assert acknowledged == set(ids), statuses
        for server in servers:
            with server.client() as http:
                # the other server's registrations: found by a lookup (a miss re-reads the file) and listed
                assert all(http.get(f"/v1/models/{model_id}").status_code == 200 for model_id in ids)
                assert _identifiers(http) >= acknowledged
        # unregistering goes through the same lock and merge: half on each server, at once
        gone = ids[: N_REGISTRATIONS // 2]
        with ThreadPoolExecutor(len(gone)) as pool:

            def unregister(n: int) -> int:
                with servers[n % 2].client() as http:
                    return http.delete(f"/v1/models/{gone[n]}").status_code

            assert set(pool.map(unregister, range(len(gone)))) == {200}
        for server in servers:
            with server.client() as http:
                assert _identifiers(http) == {TINY_ID, *ids[len(gone) :]}
    assert not list(store.glob("*.tmp")) and not list(store.glob(".*.tmp"))
    with running_server(store) as restarted, restarted.client() as http:
        assert _identifiers(http) == {TINY_ID, *ids[len(gone) :]}
