"""Server-sent events: the `text/event-stream` response a streamed generation is sent as, and the encoding of
one event."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from typing import Any, Protocol

import anyio
from starlette.types import Receive, Scope, Send


def sse_event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class Closeable(Protocol):
    """What an event stream holds open behind its producer: generations (their slots), an upstream response."""

    async def close(self) -> None: ...


class EventStreamResponse:
    """`text/event-stream` from an async generator of encoded events. It races the body against the client's
    `http.disconnect`; when the client leaves it cancels the producer (and `background`, which feeds it, if
    any). However the response ends, the producer and what feeds it (generations, whose slots are freed, or an
    upstream's response) are closed, even if it never started."""

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        generations: Closeable,
        headers: Mapping[str, str] | None = None,
        background: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._events = events
        self._generations = generations
        self._background = background
        self._headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                        *self._headers,
                    ],
                }
            )
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        continue
                    group.cancel_scope.cancel()

                group.start_soon(watch_disconnect)
                if self._background is not None:
                    group.start_soon(self._background)
                async for chunk in self._events:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._events.aclose()
                await self._generations.close()
