"""The stored Responses' SQLite file: retention by count and by age, WAL mode, a conversation kept whole."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import anyio

from edge_runtime.api import responses_types as rt
from edge_runtime.server.response_store import FILE_NAME, ResponseStore, StoredResponse, open_beside_models


def _stored(created_at: float | None = None) -> StoredResponse:
    response = rt.Response(
        status="completed",
        model="m",
        created_at=time.time() if created_at is None else created_at,
        output=[rt.OutputMessage(status="completed", content=[rt.OutputTextPart(text="hi")])],
    )
    conversation: list[rt.InputItem] = [
        rt.MessageItem(role="user", content="a"),
        rt.FunctionCallItem(type="function_call", call_id="c", name="f", arguments="{}"),
        rt.FunctionCallOutputItem(type="function_call_output", call_id="c", output="ok"),
    ]
    return StoredResponse(response, conversation)


def test_the_newest_are_kept_and_old_ones_are_neither_read_nor_kept(tmp_path: Path) -> None:
    async def run() -> None:
        store = ResponseStore(tmp_path / FILE_NAME, max_responses=2, max_age_s=3600)
        try:
            first, second, third = _stored(), _stored(), _stored()
            for stored in (first, second, third):
                await store.save(stored)
            assert await store.get(first.response.id) is None
            again = await store.get(third.response.id)
            assert again == third
            assert store.count() == 2
            stale = _stored(created_at=time.time() - 7200)
            await store.save(stale)
            assert await store.get(stale.response.id) is None and store.count() == 2
            assert await store.delete(second.response.id) and not await store.delete(second.response.id)
        finally:
            store.close()

    anyio.run(run)
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_store_that_cannot_be_written_keeps_responses_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = open_beside_models(blocker / "models", 10, 3600)
    try:
        assert store.path is None
        stored = _stored()
        anyio.run(store.save, stored)
        assert anyio.run(store.get, stored.response.id) == stored
    finally:
        store.close()
