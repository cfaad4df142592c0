"""Running a generation for a route: admission before the response starts, metrics while it runs, and an SSE
response that stops the generation when the client goes away."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

import anyio
import numpy as np
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from edge_runtime.api.generation import GenerationResult, TextModel, collect
from edge_runtime.api.tool_use import ChatGeneration
from edge_runtime.engine.types import Constraint, GenerationDone, GenerationEvent, GenerationRequest
from edge_runtime.server.catalog import CatalogModel
from edge_runtime.server.errors import ClientDisconnected
from edge_runtime.server.metrics import Histogram, ServerMetrics
from edge_runtime.server.state import ServerState


class TimedConstraint:
    """Forwards the Constraint protocol and records how long each full mask takes."""

    def __init__(self, inner: Constraint, histogram: Histogram, model_id: str) -> None:
        self._inner = inner
        self._histogram = histogram
        self._model_id = model_id

    def accept_token(self, token_id: int) -> bool:
        return self._inner.accept_token(token_id)

    def fill_mask(self, mask: np.ndarray) -> None:
        started = time.perf_counter()
        self._inner.fill_mask(mask)
        self._histogram.observe(time.perf_counter() - started, self._model_id)

    def forced_tokens(self) -> list[int]:
        return self._inner.forced_tokens()

    def is_complete(self) -> bool:
        return self._inner.is_complete()

    def is_finished(self) -> bool:
        return self._inner.is_finished()


def timed_factory(
    factory: Callable[[], Constraint] | None, metrics: ServerMetrics, model_id: str
) -> Callable[[], Constraint] | None:
    if factory is None:
        return None
    return lambda: TimedConstraint(factory(), metrics.grammar_mask_time, model_id)


class Generation:
    """One admitted engine generation. `start()` waits for the first event, so that admission errors
    (Overloaded, ContextLengthExceeded) become HTTP errors before any response byte is sent."""

    def __init__(
        self, model: TextModel, request: GenerationRequest, metrics: ServerMetrics, state: dict[str, Any]
    ) -> None:
        request.constraint_factory = timed_factory(request.constraint_factory, metrics, model.model_id)
        self._model_id = model.model_id
        self._metrics = metrics
        self._state = state
        self._events = model.generate(request)
        self._first: GenerationEvent | None = None
        self._closed = False

    async def start(self) -> None:
        try:
            self._first = await self._events.__anext__()
        except BaseException:
            await self.close()
            raise

    async def events(self) -> AsyncGenerator[GenerationEvent, None]:
        """The first event, then the rest; the generation is closed (its slot freed) however iteration ends."""
        if self._first is None:
            raise RuntimeError("Generation.events() before start()")
        try:
            event: GenerationEvent = self._first
            while True:
                if isinstance(event, GenerationDone):
                    self._record(event)
                yield event
                if isinstance(event, GenerationDone):
                    return
                event = await self._events.__anext__()
        finally:
            with anyio.CancelScope(shield=True):
                await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    def _record(self, done: GenerationDone) -> None:
        m = self._metrics
        m.prompt_tokens.inc(self._model_id, amount=done.prompt_tokens)
        m.cached_prompt_tokens.inc(self._model_id, amount=done.cached_prompt_tokens)
        m.generated_tokens.inc(self._model_id, amount=done.completion_tokens)
        if done.completion_tokens > 0:
            m.time_to_first_token.observe(done.time_to_first_token_s, self._model_id)
        if done.completion_tokens > 1:
            per_token = (done.total_time_s - done.time_to_first_token_s) / (done.completion_tokens - 1)
            m.time_per_token.observe(per_token, self._model_id)
        self._state["prompt_tokens"] = self._state.get("prompt_tokens", 0) + done.prompt_tokens
        self._state["completion_tokens"] = self._state.get("completion_tokens", 0) + done.completion_tokens
        self._state.setdefault("ttft_s", done.time_to_first_token_s)


Plan = TypeVar("Plan", GenerationRequest, ChatGeneration)


async def admit(
    request: Request,
    state: ServerState,
    model_name: str,
    translate: Callable[[TextModel, CatalogModel], Plan],
) -> tuple[Plan, Generation]:
    """Load the model, translate the body in a worker thread (grammar compiles and tokenizing take time) and
    start the generation; any error up to its first event is still an HTTP error."""
    request.state.model = model_name
    served, model = await state.model(model_name, "llm")
    with model.in_use():
        plan = await anyio.to_thread.run_sync(translate, model, served)
        engine_request = plan.request if isinstance(plan, ChatGeneration) else plan
        generation = Generation(model, engine_request, state.metrics, request.scope["state"])
        await generation.start()
    return plan, generation


async def collect_while_connected(
    request: Request, generations: list[Generation], n_choices: int
) -> list[GenerationResult]:
    """Gather non-streamed generations side by side, cancelling them (and freeing their slots) if the client
    leaves first."""
    outcome: dict[int, GenerationResult | BaseException] = {}
    async with anyio.create_task_group() as group:

        async def run(position: int, generation: Generation) -> None:
            try:
                async with aclosing(generation.events()) as events:
                    outcome[position] = await collect(events, n_choices)
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group, with its own type
                outcome[position] = exc
                group.cancel_scope.cancel()
            if len(outcome) == len(generations):
                group.cancel_scope.cancel()

        async def watch_disconnect() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                continue
            group.cancel_scope.cancel()

        for position, generation in enumerate(generations):
            group.start_soon(run, position, generation)
        group.start_soon(watch_disconnect)
    for value in outcome.values():
        if isinstance(value, BaseException):
            raise value
    if len(outcome) < len(generations):
        raise ClientDisconnected("the client closed the connection before the answer was ready")
    return [outcome[position] for position in range(len(generations))]  # type: ignore[misc]


def sse_event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class EventStreamResponse:
    """`text/event-stream` from an async generator of encoded events. It races the body against the client's
    `http.disconnect`; when the client leaves it cancels the producer. However the response ends, the
    producer and the generations behind it are closed (freeing their slots), even if it never started."""

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        generations: Sequence[Generation] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._events = events
        self._generations = tuple(generations)
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
                async for chunk in self._events:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._events.aclose()
                for generation in self._generations:
                    await generation.close()
