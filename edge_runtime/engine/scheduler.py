"""The batch scheduler: one thread per loaded model, one `llama_decode` per step.

A step holds the next token of every running sequence plus a bounded chunk of prompt for jobs still reading
theirs (chunked prefill, so a long prompt does not stall streams). What room the step has left is shared between
the prompts being read, shortest first, so a short prompt's first token never waits for a stranger's long one.
Events go back to each consumer's asyncio loop; a consumer that goes away frees its slots at the next step,
even in the middle of its prompt.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import numpy as np

from edge_runtime.engine.llama_handles import Batch, LlamaContext
from edge_runtime.engine.sampling import TokenSampler, log_softmax_info, token_rank
from edge_runtime.engine.stop_strings import StopStringFilter
from edge_runtime.engine.tokenizer import IncrementalDecoder, Tokenizer
from edge_runtime.engine.types import (
    ChoiceFinished,
    Constraint,
    FinishReason,
    GenerationDone,
    GenerationEvent,
    GenerationRequest,
    PromptScored,
    SamplingParams,
    TextPiece,
    TokenLogprob,
)
from edge_runtime.errors import BadRequest, ContextLengthExceeded, EdgeRuntimeError, Overloaded

log = logging.getLogger(__name__)


SCORED_PROMPT_CHUNK = 32
"""Prompt tokens per step when each needs its logits (echo with logprobs, prompt_logprobs): llama.cpp sizes its
output buffer by the most logits one decode asked for, a vocabulary-sized row each (1 MiB for Gemma)."""


class GenerationFailed(EdgeRuntimeError):
    """The engine could not finish a generation (a llama.cpp failure or a constraint with no way forward)."""


class _Mailbox:
    """Events from the scheduler thread to one consumer's event loop, posted once per step: one wake-up per
    batch of events, and none while the consumer has not picked up the last batch yet."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._events: deque[GenerationEvent | BaseException] = deque()
        self._ready = asyncio.Event()
        self._wake_pending = False
        self._lock = threading.Lock()

    def post(self, events: list[GenerationEvent | BaseException]) -> None:
        """Scheduler thread."""
        with self._lock:
            self._events.extend(events)
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the consumer's loop is closed: nobody is listening any more
            pass

    async def take(self) -> list[GenerationEvent | BaseException]:
        """Consumer's loop: every event posted so far (waits for the first)."""
        await self._ready.wait()
        with self._lock:
            self._ready.clear()
            self._wake_pending = False
            events = list(self._events)
            self._events.clear()
        return events


@dataclass
class _Slot:
    seq_id: int
    history: list[int] = field(default_factory=list)
    """Exactly the tokens in this sequence's KV cache, in order."""
    busy: bool = False


@dataclass
class _Choice:
    index: int
    slot: _Slot
    sampler: TokenSampler
    constraint: Constraint | None
    decoder: IncrementalDecoder
    stops: StopStringFilter
    text: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob | None] = field(default_factory=list)
    cumulative_logprob: float = 0.0
    pending: list[int] = field(default_factory=list)
    """Tokens chosen but not yet decoded: the sampled one and any forced ones after it."""
    logits_at: int = -1
    finish: FinishReason | None = None


@dataclass
class _Job:
    request: GenerationRequest
    mailbox: _Mailbox
    outbox: list[GenerationEvent | BaseException] = field(default_factory=list)
    """Events of the current step, posted to the mailbox all at once."""
    slots: list[_Slot] = field(default_factory=list)
    choices: list[_Choice] = field(default_factory=list)
    prompt_pos: int = 0
    cached: int = 0
    prompt_logits_at: list[tuple[int, int]] = field(default_factory=list)
    """(batch index, prompt position) pairs whose logits give echoed prompt logprobs."""
    echo_logprobs: list[TokenLogprob | None] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    cancelled: bool = False
    done: bool = False
    """The consumer has received the last event (or the error that ends the generation)."""

    def emit(self, event: GenerationEvent | BaseException) -> None:
        self.outbox.append(event)

    def deliver(self) -> None:
        if self.outbox:
            self.mailbox.post(self.outbox)
            self.outbox = []

    @property
    def n_sequences(self) -> int:
        return max(self.request.n, self.request.best_of or 0)

    @property
    def buffered(self) -> bool:
        """best_of picks its choices at the end, so nothing is streamed before."""
        return (self.request.best_of or 0) > self.request.n

    @property
    def scores_prompt(self) -> bool:
        """Every prompt token's logprob is wanted: echo with logprobs, or vLLM's prompt_logprobs."""
        request = self.request
        return request.echo and request.logprobs is not None or request.prompt_logprobs is not None

    @property
    def reading_prompt(self) -> bool:
        return self.prompt_pos < len(self.request.prompt_tokens)


class Reservation:
    """A place in a scheduler's queue, held while the server prepares a request (chat template, tokenizer, grammar
    compile), so that a request the queue would shed is shed before that work. `generate` takes it over;
    `release` gives it back (idempotent)."""

    def __init__(self, scheduler: BatchScheduler, n_sequences: int) -> None:
        self.n_sequences = n_sequences
        self._scheduler = scheduler

    def release(self) -> None:
        self._scheduler._unreserve(self)


class BatchScheduler:
    """Owns a context's sequences. `n_batch` bounds the tokens of one step; `queue_size` bounds the jobs
    waiting for free slots (past it, submit raises Overloaded)."""

    def __init__(
        self,
        context: LlamaContext,
        tokenizer: Tokenizer,
        *,
        n_batch: int,
        queue_size: int,
        prefill_chunk: int | None = None,
    ) -> None:
        self.context = context
        self.tokenizer = tokenizer
        self.n_ctx = context.params.n_ctx_per_seq
        self.queue_size = queue_size
        self.prefill_chunk = prefill_chunk or n_batch
        self._batch = Batch(n_batch)
        self._mask = np.zeros(context.n_vocab, dtype=np.bool_)
        self._slots = [_Slot(seq_id) for seq_id in range(context.params.n_seq)]
        self._waiting: deque[_Job] = deque()
        self._running: list[_Job] = []
        self._ended: list[_Job] = []
        """Jobs that finished or failed since their events were last delivered."""
        self._reserved: list[Reservation] = []
        self._refusal: EdgeRuntimeError | None = None
        """Set by fail_all: every new request is refused with (a copy of) it."""
        self._wake = threading.Condition()
        self._stopping = False
        self.prompt_tokens_decoded = 0
        """Prompt tokens put through `llama_decode` since the start (prefix reuse skips the rest)."""
        self.abandoned = 0
        """Generations whose consumer went away before their last event (client disconnects, cancellations)."""
        self._thread = threading.Thread(target=self._run, name="edge-runtime-scheduler", daemon=True)
        self._thread.start()

    @property
    def n_slots(self) -> int:
        return len(self._slots)

    @property
    def busy_slots(self) -> int:
        return sum(slot.busy for slot in self._slots)

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    def check(self, request: GenerationRequest) -> None:
        """Refuse what could never run, before anything is queued."""
        n_prompt = len(request.prompt_tokens)
        if n_prompt == 0:
            raise BadRequest("the prompt is empty")
        if n_prompt >= self.n_ctx:
            raise ContextLengthExceeded(n_prompt, self.n_ctx)
        sequences = max(request.n, request.best_of or 0)
        if request.n < 1:
            raise BadRequest(f"n must be at least 1, got {request.n}")
        if request.best_of is not None and request.best_of < request.n:
            raise BadRequest(f"best_of ({request.best_of}) must be at least n ({request.n})")
        if sequences > len(self._slots):
            raise BadRequest(f"{sequences} sequences asked but the model serves {len(self._slots)} at once")
        if request.logprobs is not None and request.logprobs < 0:
            raise BadRequest(f"logprobs must be >= 0, got {request.logprobs}")
        if request.max_tokens is not None and request.max_tokens < 0:
            raise BadRequest(f"max_tokens must be >= 0, got {request.max_tokens}")
        n_vocab = self.context.n_vocab
        bad = [t for t in [*request.prompt_tokens, *request.sampling.logit_bias] if not 0 <= t < n_vocab]
        if bad:
            raise BadRequest(f"token id {bad[0]} is outside the vocabulary of {n_vocab} tokens")
        _check_sampling(request.sampling)

    def reserve(self, n_sequences: int) -> Reservation:
        """Hold a place for a request about to be prepared; Overloaded now if the queue would shed it."""
        reservation = Reservation(self, min(max(n_sequences, 1), self.n_slots))
        with self._wake:
            self._check_open()
            if self._must_wait(reservation.n_sequences) > self.queue_size:
                raise Overloaded(f"the queue is full ({self.queue_size} requests waiting)")
            self._reserved.append(reservation)
        return reservation

    def _unreserve(self, reservation: Reservation) -> None:
        with self._wake:
            if reservation in self._reserved:
                self._reserved.remove(reservation)

    def _check_open(self) -> None:
        if self._stopping:
            raise Overloaded("the model is shutting down")
        if self._refusal is not None:
            raise type(self._refusal)(*self._refusal.args)

    def fail_all(self, error: EdgeRuntimeError) -> None:
        """Fail every queued and running generation with `error` now, and refuse new ones with it (the server's
        shutdown grace ran out). Each consumer raises it at once; the next step frees its slots."""
        with self._wake:
            self._refusal = error
            self._reserved.clear()
            for job in [*self._waiting, *self._running]:
                job.mailbox.post([type(error)(*error.args)])

    async def generate(
        self, request: GenerationRequest, reservation: Reservation | None = None
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Events of one request: text pieces, one ChoiceFinished per choice, then GenerationDone. A request
        holding a reservation takes its place in the queue instead of being checked against it again."""
        job = _Job(request, _Mailbox(asyncio.get_running_loop()))
        try:
            self.check(request)
            with self._wake:
                held = reservation is not None and reservation in self._reserved
                if reservation is not None:
                    reservation.release()
                self._check_open()
                if not held and self._must_wait(job.n_sequences) > self.queue_size:
                    raise Overloaded(f"the queue is full ({self.queue_size} requests waiting)")
                self._waiting.append(job)
                self._wake.notify()
        finally:
            if reservation is not None:
                reservation.release()
        try:
            while True:
                for event in await job.mailbox.take():
                    if isinstance(event, BaseException):
                        job.done = True
                        raise event
                    if isinstance(event, GenerationDone):
                        job.done = True
                    yield event
                    if job.done:
                        return
        finally:
            with self._wake:
                if not job.done:
                    self.abandoned += 1
                job.cancelled = True
                self._wake.notify()

    def _must_wait(self, n_sequences: int) -> int:
        """How many queued jobs and reservations, a newcomer of `n_sequences` last, free slots cannot take at
        once (admission is first come, first served): a burst arriving while slots are free is not counted
        against the queue."""
        free = sum(not slot.busy for slot in self._slots)
        waiting = 0
        needs = [*(job.n_sequences for job in self._waiting), *(r.n_sequences for r in self._reserved)]
        for need in [*needs, n_sequences]:
            if waiting == 0 and need <= free:
                free -= need
            else:
                waiting += 1
        return waiting

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()
        self._batch.close()

    # --- the scheduler thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            if not self._running:
                self._deliver()
            with self._wake:
                while not self._stopping and not self._waiting and not self._running:
                    self._wake.wait()
                if self._stopping:
                    for job in [*self._waiting, *self._running]:
                        job.emit(Overloaded("the model was unloaded"))
                        job.deliver()
                    self._waiting.clear()
                    self._running.clear()
                    return
                self._drop_cancelled()
                self._admit()
            if self._running:
                try:
                    self._step()
                except Exception as exc:  # a failed decode fails the jobs in it, never the thread
                    log.exception("decode step failed")
                    for job in list(self._running):
                        self._fail(job, exc, forget_cache=True)

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._waiting if j.cancelled]:
            self._waiting.remove(job)
        for job in [j for j in self._running if j.cancelled]:
            self._running.remove(job)
            self._release(job)

    def _deliver(self) -> None:
        """Post the events of the last step. Called just before a decode, which releases the GIL, so the
        consumers run while llama.cpp computes instead of contending with the scheduler thread."""
        for job in self._running:
            job.deliver()
        for job in self._ended:
            job.deliver()
        self._ended.clear()

    def _release(self, job: _Job) -> None:
        for slot in job.slots:
            slot.busy = False

    def _admit(self) -> None:
        while self._waiting:
            job = self._waiting[0]
            free = [slot for slot in self._slots if not slot.busy]
            if len(free) < job.n_sequences:
                return
            self._waiting.popleft()
            self._running.append(job)
            try:
                self._start(job, free)
            except Exception as exc:  # noqa: BLE001 - a job that cannot start fails alone, never the thread
                log.warning("generation could not start: %s", exc)
                self._fail(job, exc, forget_cache=True)

    def _start(self, job: _Job, free: list[_Slot]) -> None:
        prompt = job.request.prompt_tokens
        first = max(free, key=lambda slot: _common_prefix(slot.history, prompt))
        reuse = 0 if job.scores_prompt else min(_common_prefix(first.history, prompt), len(prompt) - 1)
        if not self.context.remove(first.seq_id, reuse, -1):
            reuse = 0
            self.context.remove(first.seq_id, 0, -1)
        del first.history[reuse:]
        others = [slot for slot in free if slot is not first][: job.n_sequences - 1]
        job.slots = [first, *others]
        for slot in job.slots:
            slot.busy = True
        job.prompt_pos = job.cached = reuse
        request = job.request
        for index, slot in enumerate(job.slots):
            constraint = request.constraint_factory() if request.constraint_factory else None
            job.choices.append(
                _Choice(
                    index=index,
                    slot=slot,
                    sampler=TokenSampler.create(request.sampling, index, prompt),
                    constraint=constraint,
                    decoder=IncrementalDecoder(self.tokenizer),
                    stops=StopStringFilter(request.stop),
                )
            )

    def _step(self) -> None:
        batch = self._batch
        batch.clear()
        for job in self._running:
            for choice in job.choices:
                if choice.finish is None and choice.pending:
                    self._feed_choice(choice)
        readers = [job for job in self._running if job.reading_prompt]
        wants = [self._prompt_chunk(job) for job in readers]
        for job, n_tokens in zip(readers, fair_shares(wants, batch.free), strict=True):
            if n_tokens > 0:
                self._feed_prompt(job, n_tokens)
        self._deliver()
        if batch.size == 0:
            return
        self.context.decode(batch)
        for job in list(self._running):
            try:
                self._after_decode(job)
            except Exception as exc:  # one job's failure (a constraint with no way forward) is its own
                log.exception("generation failed after decode")
                self._fail(job, exc, forget_cache=False)

    def _fail(self, job: _Job, exc: Exception, *, forget_cache: bool) -> None:
        job.emit(exc if isinstance(exc, EdgeRuntimeError) else GenerationFailed(f"generation failed: {exc}"))
        self._running.remove(job)
        self._ended.append(job)
        self._release(job)
        if forget_cache:
            for slot in job.slots:
                slot.history.clear()
                self.context.remove(slot.seq_id, 0, -1)

    def _feed_choice(self, choice: _Choice) -> None:
        slot = choice.slot
        room = self._batch.free
        tokens, choice.pending = choice.pending[:room], choice.pending[room:]
        for i, token in enumerate(tokens):
            is_last = i == len(tokens) - 1 and not choice.pending
            index = self._batch.add(token, len(slot.history), slot.seq_id, is_last)
            slot.history.append(token)
            if is_last:
                choice.logits_at = index

    def _prompt_chunk(self, job: _Job) -> int:
        """The most prompt tokens `job` may read in one step."""
        want_all = job.scores_prompt
        chunk = min(self.prefill_chunk, SCORED_PROMPT_CHUNK) if want_all else self.prefill_chunk
        return min(chunk, len(job.request.prompt_tokens) - job.prompt_pos)

    def _feed_prompt(self, job: _Job, n_tokens: int) -> None:
        prompt = job.request.prompt_tokens
        slot = job.slots[0]
        want_all = job.scores_prompt
        end = min(len(prompt), job.prompt_pos + n_tokens)
        self.prompt_tokens_decoded += end - job.prompt_pos
        for position in range(job.prompt_pos, end):
            is_last = position == len(prompt) - 1
            index = self._batch.add(prompt[position], position, slot.seq_id, is_last or want_all)
            slot.history.append(prompt[position])
            if want_all and not is_last:
                job.prompt_logits_at.append((index, position + 1))
            if is_last:
                for choice in job.choices:
                    choice.logits_at = index
        job.prompt_pos = end

    def _after_decode(self, job: _Job) -> None:
        request = job.request
        if job.prompt_logits_at:
            self._collect_prompt_logprobs(job)
        if job.reading_prompt:
            return
        if all(choice.logits_at < 0 for choice in job.choices):
            return
        if job.first_token is None:
            job.first_token = time.perf_counter()
            self._share_prompt(job)
            if request.prompt_logprobs is not None:
                job.emit(PromptScored(self._prompt_logprobs(job)))
            if request.echo:
                self._emit_echo(job)
            if request.max_tokens == 0:
                for choice in job.choices:
                    self._close_choice(job, choice, "length")
                self._finish(job)
                return
        shared_row: np.ndarray | None = None
        for choice in job.choices:
            if choice.finish is not None or choice.logits_at < 0:
                continue
            logits = self.context.logits(choice.logits_at)
            if len(job.choices) > 1 and choice.pending == [] and choice.tokens == []:
                if shared_row is None:
                    shared_row = logits.copy()
                logits = shared_row.copy()
            choice.logits_at = -1
            self._advance(job, choice, logits)
        if all(choice.finish is not None for choice in job.choices):
            self._finish(job)

    def _share_prompt(self, job: _Job) -> None:
        """The other choices start from a copy of the first one's prompt cache."""
        first = job.slots[0]
        for slot in job.slots[1:]:
            self.context.remove(slot.seq_id, 0, -1)
            self.context.copy(first.seq_id, slot.seq_id, 0, -1)
            slot.history = list(first.history)

    def _collect_prompt_logprobs(self, job: _Job) -> None:
        """Echo and prompt_logprobs read the same numbers: top-N is the larger of the two asks, each cuts its
        own; the rank (a pass over the vocabulary) only when prompt_logprobs asked for it."""
        request = job.request
        top_n = max(request.logprobs or 0, request.prompt_logprobs or 0)
        prompt = request.prompt_tokens
        if not job.echo_logprobs:
            job.echo_logprobs.append(None)
        for index, position in job.prompt_logits_at:
            token = prompt[position]
            row = self.context.logits(index)
            info = log_softmax_info(row, token, top_n)
            rank = token_rank(row, token) if request.prompt_logprobs is not None else None
            job.echo_logprobs.append(self._token_logprob(token, info.chosen, info.top, rank))
        job.prompt_logits_at.clear()

    def _prompt_logprobs(self, job: _Job) -> list[TokenLogprob | None]:
        """One entry per prompt token, the first None."""
        logprobs = list(job.echo_logprobs)
        logprobs.extend([None] * (len(job.request.prompt_tokens) - len(logprobs)))
        return logprobs

    def _emit_echo(self, job: _Job) -> None:
        prompt = job.request.prompt_tokens
        text = self.tokenizer.detokenize(prompt)
        logprobs = self._prompt_logprobs(job) if job.request.logprobs is not None else None
        for choice in job.choices:
            choice.text.append(text)
            if not job.buffered:
                job.emit(TextPiece(choice.index, text, list(prompt), logprobs))

    def _token_logprob(
        self, token: int, logprob: float, top: list[tuple[int, float]], rank: int | None = None
    ) -> TokenLogprob:
        text = self.tokenizer.token_text
        return TokenLogprob(token, text(token), logprob, [(t, text(t), lp) for t, lp in top], rank)

    def _advance(self, job: _Job, choice: _Choice, logits: np.ndarray) -> None:
        request = job.request
        need_logprobs = request.logprobs is not None or job.buffered
        raw = logits.copy() if need_logprobs else None
        token = choice.sampler.sample(logits, choice.constraint, self._mask)
        entry = None
        if raw is not None:
            info = log_softmax_info(raw, token, request.logprobs or 0)
            choice.cumulative_logprob += info.chosen
            entry = self._token_logprob(token, info.chosen, info.top)
        steps = [(token, entry)]
        if choice.constraint is not None and token not in self.tokenizer.eog_ids:
            for forced in choice.constraint.forced_tokens():
                if not choice.constraint.accept_token(forced):
                    break
                steps.append(
                    (forced, self._token_logprob(forced, 0.0, [(forced, 0.0)]) if raw is not None else None)
                )
        for token, entry in steps:
            self._take(job, choice, token, entry)
            if choice.finish is not None:
                break
        if choice.finish is None and choice.constraint is not None and choice.constraint.is_finished():
            self._close_choice(job, choice, "stop")

    def _take(self, job: _Job, choice: _Choice, token: int, entry: TokenLogprob | None) -> None:
        request = job.request
        if token in self.tokenizer.eog_ids:
            self._close_choice(job, choice, "stop")
            return
        choice.sampler.record(token)
        choice.tokens.append(token)
        text, stopped = choice.stops.feed(choice.decoder.feed(token))
        choice.text.append(text)
        if entry is not None:
            choice.logprobs.append(entry)
        if not job.buffered:
            job.emit(TextPiece(choice.index, text, [token], [entry] if entry is not None else None))
        if stopped:
            self._close_choice(job, choice, "stop_string", flush=False)
            return
        generated = len(choice.tokens)
        if (
            request.max_tokens is not None
            and generated >= request.max_tokens
            or len(choice.slot.history) + len(choice.pending) + 1 >= self.n_ctx
        ):
            self._close_choice(job, choice, "length")
        else:
            choice.pending.append(token)

    def _close_choice(self, job: _Job, choice: _Choice, reason: FinishReason, *, flush: bool = True) -> None:
        choice.finish = reason
        choice.pending.clear()
        if flush:
            tail = choice.decoder.flush()
            text, stopped = choice.stops.feed(tail)
            text += "" if stopped else choice.stops.flush()
            if stopped:
                choice.finish = "stop_string"
            if text:
                choice.text.append(text)
                if not job.buffered:
                    job.emit(
                        TextPiece(choice.index, text, [], [] if job.request.logprobs is not None else None)
                    )

    def _finish(self, job: _Job) -> None:
        self._running.remove(job)
        self._ended.append(job)
        self._release(job)
        choices = job.choices
        if job.buffered:
            ranked = sorted(choices, key=lambda c: c.cumulative_logprob, reverse=True)[: job.request.n]
            choices = []
            for new_index, choice in enumerate(ranked):
                choice.index = new_index
                logprobs = choice.logprobs if job.request.logprobs is not None else None
                job.emit(TextPiece(new_index, "".join(choice.text), list(choice.tokens), logprobs))
                choices.append(choice)
        finished = [
            ChoiceFinished(c.index, c.finish or "stop", "".join(c.text), list(c.tokens), c.cumulative_logprob)
            for c in choices
        ]
        for event in finished:
            job.emit(event)
        now = time.perf_counter()
        job.emit(
            GenerationDone(
                choices=finished,
                prompt_tokens=len(job.request.prompt_tokens),
                completion_tokens=sum(len(c.tokens) for c in job.choices),
                cached_prompt_tokens=job.cached,
                time_to_first_token_s=(job.first_token or now) - job.started,
                total_time_s=now - job.started,
            )
        )


def fair_shares(wants: list[int], budget: int) -> list[int]:
    """Split `budget` tokens between prompts wanting `wants` tokens each, max-min fair: the smallest wants are
    met in full and the rest share what is left equally, so a short prompt is read in one step beside a long one
    and a long one still gets the room the short ones leave."""
    shares = [0] * len(wants)
    left = budget
    order = sorted(range(len(wants)), key=lambda i: wants[i])
    for rank, i in enumerate(order):
        shares[i] = min(wants[i], left // (len(order) - rank))
        left -= shares[i]
    return shares


def _check_sampling(params: SamplingParams) -> None:
    problems = [
        (params.temperature < 0.0, f"temperature must be >= 0, got {params.temperature}"),
        (not 0.0 < params.top_p <= 1.0, f"top_p must be in (0, 1], got {params.top_p}"),
        (params.top_k < 0, f"top_k must be >= 0, got {params.top_k}"),
        (not 0.0 <= params.min_p <= 1.0, f"min_p must be in [0, 1], got {params.min_p}"),
        (
            params.repetition_penalty <= 0.0,
            f"repetition_penalty must be > 0, got {params.repetition_penalty}",
        ),
    ]
    for failed, message in problems:
        if failed:
            raise BadRequest(message)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
