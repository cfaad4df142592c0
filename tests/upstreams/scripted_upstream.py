"""A real HTTP server on loopback whose answers a test scripts (statuses, Retry-After, bodies, event streams),
and which records what it was sent: for retries, key handling and the hosted dialects' request shapes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from live_server import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Any] | None = None
    """When set, an event stream of these payloads (then [DONE], unless `done` is False)."""
    done: bool = True


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ScriptedUpstream:
    base_url: str
    answers: list[Answer] = field(default_factory=list)
    """Consumed in order; the last one repeats."""
    received: list[Received] = field(default_factory=list)

    def script(self, *answers: Answer) -> None:
        self.answers[:] = answers
        self.received.clear()


def _app(upstream: ScriptedUpstream) -> Starlette:
    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": []})

    async def endpoint(request: Request) -> Response:
        upstream.received.append(Received(request.url.path, dict(request.headers), await request.json()))
        answer = upstream.answers.pop(0) if len(upstream.answers) > 1 else upstream.answers[0]
        if answer.events is not None:
            lines = [f"data: {json.dumps(event)}\n\n" for event in answer.events]
            lines += ["data: [DONE]\n\n"] if answer.done else []
            return StreamingResponse(iter(lines), media_type="text/event-stream", headers=answer.headers)
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

    return Starlette(routes=[
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/{rest:path}", endpoint, methods=["POST"]),
    ])


@contextmanager
def scripted_upstream() -> Iterator[ScriptedUpstream]:
    port = free_port()
    upstream = ScriptedUpstream(f"http://127.0.0.1:{port}/v1", [Answer(body={})])
    server = uvicorn.Server(uvicorn.Config(_app(upstream), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the scripted upstream did not start"
        time.sleep(0.02)
    try:
        yield upstream
    finally:
        server.should_exit = True
        thread.join(timeout=10)
