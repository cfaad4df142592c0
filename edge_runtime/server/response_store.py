"""Stored Responses (`store: true`) in SQLite beside the models: what `GET /v1/responses/{id}` returns and what
`previous_response_id` continues. Each row holds a response and the whole conversation that led to it, so a
turn never depends on an earlier row still being there."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from edge_runtime.api import responses_types as rt
from edge_runtime.api.translate_responses import INPUT_ITEMS

log = logging.getLogger("edge_runtime.server")

FILE_NAME = "responses.sqlite3"
DEFAULT_MAX_RESPONSES = 10_000
DEFAULT_MAX_AGE_S = 30 * 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    response TEXT NOT NULL,
    conversation TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class StoredResponse:
    response: rt.Response
    conversation: list[rt.InputItem]
    """The input items before this response's output (earlier turns included; instructions excluded)."""


class ResponseStore:
    """One SQLite file in WAL mode, used from worker threads one call at a time. Retention: the newest
    `max_responses` rows no older than `max_age_s`; older ones are pruned at each write and never read."""

    def __init__(
        self, path: Path | None, max_responses: int = DEFAULT_MAX_RESPONSES, max_age_s: float = DEFAULT_MAX_AGE_S
    ) -> None:
        """`path` None: in memory, for this process only."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._max_responses = max_responses
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _oldest_kept(self) -> float:
        return time.time() - self._max_age_s

    def _save(self, stored: StoredResponse) -> None:
        conversation = json.dumps(INPUT_ITEMS.dump_python(stored.conversation, mode="json", by_alias=True))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO responses (id, created_at, response, conversation) VALUES (?, ?, ?, ?)",
                    (stored.response.id, stored.response.created_at, stored.response.model_dump_json(), conversation),
                )
                self._db.execute("DELETE FROM responses WHERE created_at < ?", (self._oldest_kept(),))
                self._db.execute(
                    "DELETE FROM responses WHERE seq <= "
                    "(SELECT seq FROM responses ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (self._max_responses,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT response, conversation FROM responses WHERE id = ? AND created_at >= ?",
                (response_id, self._oldest_kept()),
            ).fetchone()
        if row is None:
            return None
        return StoredResponse(rt.Response.model_validate_json(row[0]), INPUT_ITEMS.validate_json(row[1]))

    def _delete(self, response_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM responses WHERE id = ?", (response_id,))
        return cursor.rowcount > 0

    def count(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(n)

    async def save(self, stored: StoredResponse) -> None:
        await anyio.to_thread.run_sync(self._save, stored)

    async def get(self, response_id: str) -> StoredResponse | None:
        return await anyio.to_thread.run_sync(self._get, response_id)

    async def delete(self, response_id: str) -> bool:
        return await anyio.to_thread.run_sync(self._delete, response_id)


def open_beside_models(root: Path, max_responses: int, max_age_s: float) -> ResponseStore:
    """The store in the model folder; if that cannot be written (a read-only store), responses are kept in
    memory until the server stops, and the log says so."""
    try:
        return ResponseStore(root / FILE_NAME, max_responses, max_age_s)
    except (OSError, sqlite3.Error) as exc:
        log.warning("stored responses are kept in memory only: cannot open %s: %s", root / FILE_NAME, exc)
        return ResponseStore(None, max_responses, max_age_s)
