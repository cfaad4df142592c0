"""Running generations for a route: admission before the response starts (a place in the queue first, then the
work of preparing the request), metrics when they end, and cancellation of every one of them when the client
goes away, streamed or not (the event stream itself is event_stream's)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from starlette.requests import Request

from edge_runtime.api.chat_generation import ChatGeneration
from edge_runtime.api.generation import CompletionPlan, GenerationResult, TextModel, collect
from edge_runtime.engine.scheduler import Reservation
from edge_runtime.engine.types import GenerationDone, GenerationEvent, GenerationRequest
from edge_runtime.server.catalog import CatalogModel
from edge_runtime.server.errors import ClientDisconnected
from edge_runtime.server.metrics import ServerMetrics
from edge_runtime.server.state import ServerState


class Generation:
    """One admitted engine generation. `start()` waits for the first event, so that admission errors
    (Overloaded, ContextLengthExceeded) become HTTP errors before any response byte is sent."""

    def __init__(
        self,
        model: TextModel,
        request: GenerationRequest,
        metrics: ServerMetrics,
        state: dict[str, Any],
        reservation: Reservation | None = None,
    ) -> None:
        self.model = model
        self._model_id = model.model_id
        self._metrics = metrics
        self._state = state
        self._reservation = reservation
        self._events = model.generate(request, reservation)
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
        if self._reservation is not None:  # a generation closed before it ever started gives its place back
            self._reservation.release()
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
        for seconds in done.mask_seconds:
            m.grammar_mask_time.observe(seconds, self._model_id)
        self._state["prompt_tokens"] = self._state.get("prompt_tokens", 0) + done.prompt_tokens
        self._state["completion_tokens"] = self._state.get("completion_tokens", 0) + done.completion_tokens
        self._state.setdefault("ttft_s", done.time_to_first_token_s)


Plan = TypeVar("Plan", GenerationRequest, ChatGeneration, CompletionPlan)
T = TypeVar("T")


def _first_request(plan: GenerationRequest | ChatGeneration | CompletionPlan) -> GenerationRequest:
    if isinstance(plan, ChatGeneration):
        return plan.request
    return plan.requests[0] if isinstance(plan, CompletionPlan) else plan


async def admit(
    request: Request,
    state: ServerState,
    model_name: str,
    translate: Callable[[TextModel, CatalogModel], Plan],
    n_sequences: int = 1,
) -> tuple[Plan, Generation]:
    """Load the model, take a place in its queue (a request that would be shed is shed now, before any work),
    translate the body in a worker thread (chat template, tokenizer, grammar compile) and start the (first)
    generation; any error up to its first event is still an HTTP error, and a client leaving meanwhile
    cancels it."""
    request.state.model = model_name
    served, model = await state.model(model_name, "llm")
    with model.in_use():
        reservation = model.reserve(n_sequences)
        try:
            plan = await anyio.to_thread.run_sync(translate, model, served)
        except BaseException:
            reservation.release()
            raise
        first = _first_request(plan)
        generation = Generation(model, first, state.metrics, request.scope["state"], reservation)
        await until_disconnect(request, generation.start)
    return plan, generation


async def until_disconnect(request: Request, work: Callable[[], Awaitable[T]]) -> T:
    """`work()`, cancelled if the client closes the connection first (then ClientDisconnected)."""
    outcome: list[T] = []
    failure: list[Exception] = []
    async with anyio.create_task_group() as group:

        async def run() -> None:
            try:
                outcome.append(await work())
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group, with its own type
                failure.append(exc)
            group.cancel_scope.cancel()

        async def watch_disconnect() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                continue
            group.cancel_scope.cancel()

        group.start_soon(run)
        group.start_soon(watch_disconnect)
    if failure:
        raise failure[0]
    if not outcome:
        raise ClientDisconnected("the client closed the connection before the answer was ready")
    return outcome[0]


class Generations:
    """The generations behind one response: one, or one per prompt of a completions request with a list of
    prompts. The first was admitted before the response; each next one is submitted once the one before it has
    started, so a request holds at most one place in the queue. Cancelling `run` (or `close`) cancels every one,
    including one still waiting for its slot."""

    def __init__(self, first: Generation, rest: Sequence[Callable[[], Generation]] = ()) -> None:
        self.started = [first]
        self._rest = list(rest)

    async def run(self, consume: Callable[[int, Generation], Awaitable[None]]) -> None:
        """Start the generations in turn, each consumed in its own task; the first failure (a start or a
        consumer) cancels the others and is raised."""
        failures: list[Exception] = []
        async with anyio.create_task_group() as group:

            async def guarded(position: int, generation: Generation) -> None:
                try:
                    await consume(position, generation)
                except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group
                    failures.append(exc)
                    group.cancel_scope.cancel()

            group.start_soon(guarded, 0, self.started[0])
            try:
                for position, make in enumerate(self._rest, start=1):
                    generation = make()
                    self.started.append(generation)
                    await generation.start()
                    group.start_soon(guarded, position, generation)
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group
                failures.append(exc)
                group.cancel_scope.cancel()
        if failures:
            raise failures[0]

    async def collect(self, n_choices: int) -> list[GenerationResult]:
        results: dict[int, GenerationResult] = {}

        async def consume(position: int, generation: Generation) -> None:
            async with aclosing(generation.events()) as events:
                results[position] = await collect(events, n_choices)

        await self.run(consume)
        return [results[position] for position in sorted(results)]

    async def forward(self, send: MemoryObjectSendStream[tuple[int, GenerationEvent] | Exception]) -> None:
        """Every generation's events, tagged with its position, as they come; a failure is the last item."""
        async with send:

            async def consume(position: int, generation: Generation) -> None:
                async with aclosing(generation.events()) as events:
                    async for event in events:
                        await send.send((position, event))

            try:
                await self.run(consume)
            except Exception as exc:  # noqa: BLE001 - reported in-stream: the status line has already gone out
                with contextlib.suppress(anyio.BrokenResourceError):
                    await send.send(exc)

    async def close(self) -> None:
        for generation in self.started:
            await generation.close()


async def collect_while_connected(
    request: Request, generations: Generations, n_choices: int
) -> list[GenerationResult]:
    """Gather non-streamed generations side by side, cancelling them all (freeing their slots and queue places)
    if the client leaves first."""
    try:
        return await until_disconnect(request, lambda: generations.collect(n_choices))
    finally:
        with anyio.CancelScope(shield=True):
            await generations.close()
