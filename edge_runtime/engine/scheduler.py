"""The batch scheduler: one thread per loaded model, one `llama_decode` per step.

A step holds the next token of every running sequence plus a bounded chunk of prompt for jobs still reading
theirs (chunked prefill, so a long prompt does not stall streams). What room the step has left is shared between
the prompts being read, shortest first, so a short prompt's first token never waits for a stranger's long one.
Prompts that arrive together with a long common prefix read it once: the others wait for the first and start from
a copy of its cache (prefix_sharing.py). Events go back to each consumer's asyncio loop; a consumer that goes away
frees its slots at the next step, even in the middle of its prompt.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator

import numpy as np

from edge_runtime.engine.choice_steps import ChoiceSteps
from edge_runtime.engine.huge_pages import IDLE_COLLAPSE
from edge_runtime.engine.llama_handles import Batch, DecodeFailed, LlamaContext
from edge_runtime.engine.prefix_checkpoints import MIN_CHECKPOINT_POSITION, PrefixCheckpoint
from edge_runtime.engine.prefix_sharing import common_prefix, leader_for, read_until
from edge_runtime.engine.prompt_lookup import draft_room
from edge_runtime.engine.request_checks import check_request
from edge_runtime.engine.sampling import TokenSampler
from edge_runtime.engine.scheduler_jobs import Choice, Job, Mailbox, Slot
from edge_runtime.engine.step_layout import SlotCompactor, fair_shares
from edge_runtime.engine.stop_strings import StopStringFilter
from edge_runtime.engine.tokenizer import IncrementalDecoder, Tokenizer
from edge_runtime.engine.types import GenerationDone, GenerationEvent, GenerationRequest
from edge_runtime.errors import EdgeRuntimeError, Overloaded

log = logging.getLogger(__name__)


SCORED_PROMPT_CHUNK = 32
"""Prompt tokens per step when each needs its logits (echo with logprobs, prompt_logprobs): llama.cpp sizes its
output buffer by the most logits one decode asked for, a vocabulary-sized row each (1 MiB for Gemma)."""


class GenerationFailed(EdgeRuntimeError):
    """The engine could not finish a generation (a llama.cpp failure or a constraint with no way forward)."""


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
        max_draft: int = 0,
        huge_pages: bool = False,
    ) -> None:
        self.context = context
        self.tokenizer = tokenizer
        self.n_ctx = context.params.n_ctx_per_seq
        self.queue_size = queue_size
        self.prefill_chunk = prefill_chunk or n_batch
        self._batch = Batch(n_batch)
        self._steps = ChoiceSteps(context, tokenizer, self.n_ctx, max_draft)
        self._slots = [Slot(seq_id) for seq_id in range(context.params.n_seq)]
        self._waiting: deque[Job] = deque()
        self._running: list[Job] = []
        self._ended: list[Job] = []
        """Jobs that finished or failed since their events were last delivered."""
        self._reserved: list[Reservation] = []
        self._refusal: EdgeRuntimeError | None = None
        """Set by fail_all: every new request is refused with (a copy of) it."""
        self._wake = threading.Condition()
        self._stopping = False
        self._huge_pages = huge_pages
        """Drive the process's huge-page pass (huge_pages.py) while this scheduler has nothing to do."""
        self.prompt_tokens_decoded = 0
        """Prompt tokens put through `llama_decode` since the start (prefix reuse skips the rest)."""
        self.prefixes_shared = 0
        """Prompts that started from a copy of another running job's cache instead of reading their prefix."""
        self._compactor = SlotCompactor()
        self.checkpoint_restores = 0
        """Prompts that resumed from a prefix checkpoint (prefix_checkpoints.py) after their cut was refused."""
        self.abandoned = 0
        """Generations whose consumer went away before their last event (client disconnects, cancellations)."""
        self._thread = threading.Thread(target=self._run, name="edge-runtime-scheduler", daemon=True)
        self._thread.start()

    @property
    def n_slots(self) -> int:
        return len(self._slots)

    @property
    def slots_moved(self) -> int:
        """Running jobs moved to a free slot below them to keep the busy slots consecutive (step_layout.py)."""
        return self._compactor.moved

    @property
    def busy_slots(self) -> int:
        return sum(slot.busy for slot in self._slots)

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def draft_tokens(self) -> tuple[int, int]:
        """Prompt-lookup tokens checked so far, and how many of them the model kept (a scrape's view)."""
        return self._steps.drafted, self._steps.draft_accepted

    @property
    def checkpoint_bytes(self) -> int:
        """Memory held by the slots' prefix checkpoints, a window two slots share counted once (read without
        the scheduler's lock: a scrape's view)."""
        states = {id(c.state): len(c.state) for slot in self._slots for c in slot.checkpoints}
        return sum(states.values())

    def check(self, request: GenerationRequest) -> None:
        """Refuse what could never run, before anything is queued."""
        check_request(request, n_ctx=self.n_ctx, n_slots=len(self._slots), n_vocab=self.context.n_vocab)

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
        job = Job(request, Mailbox(asyncio.get_running_loop()))
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
                if self._huge_pages:
                    IDLE_COLLAPSE.run_when_quiet(self._wake, lambda: bool(self._waiting) or self._stopping)
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

    def _release(self, job: Job) -> None:
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

    def _start(self, job: Job, free: list[Slot]) -> None:
        prompt = job.request.prompt_tokens
        first = max(free, key=lambda slot: common_prefix(slot.history, prompt))
        others = [slot for slot in free if slot is not first][: job.n_sequences - 1]
        job.slots = [first, *others]
        for slot in job.slots:
            slot.busy = True
        leader, at = leader_for(job, self._running)
        if leader is None:
            self._place_prompt(job)
        else:
            job.follows, job.follow_at = leader, at
        request = job.request
        for index, slot in enumerate(job.slots):
            constraint = request.constraint_factory() if request.constraint_factory else None
            job.choices.append(
                Choice(
                    index=index,
                    slot=slot,
                    sampler=TokenSampler.create(request.sampling, index, prompt),
                    constraint=constraint,
                    decoder=IncrementalDecoder(self.tokenizer),
                    stops=StopStringFilter(request.stop),
                )
            )

    def _place_prompt(self, job: Job) -> None:
        """Cut the first slot's cache back to what it shares with the prompt (or to a checkpoint): the prompt
        is read from there."""
        prompt = job.request.prompt_tokens
        first = job.slots[0]
        shared = 0 if job.scores_prompt else min(common_prefix(first.history, prompt), len(prompt) - 1)
        reuse = shared
        if not self.context.remove(first.seq_id, reuse, -1):
            reuse = self._restore_checkpoint(first, prompt, shared)
        del first.history[reuse:]
        if (
            self.context.keeps_window_only
            and shared >= MIN_CHECKPOINT_POSITION
            and not first.checkpoints.has(prompt[:shared])
        ):
            if reuse == shared:  # the cache now ends at the shared prefix: its window is saved as it is
                self._save_checkpoint(first)
            else:  # the prompt is read from `reuse`: its window is saved once the read reaches `shared`
                job.checkpoint_at = shared
        job.prompt_pos = job.cached = reuse

    def _take_shared_prefixes(self) -> None:
        """Start every follower whose leader has read up to the shared prefix from a copy of the leader's cache
        (which ends exactly there: the leader's read stops at it); a follower whose leader went away, or whose
        copy cannot be made, reads its prompt as any job does."""
        for job in self._running:
            leader = job.follows
            if leader is None:
                continue
            at = job.follow_at
            alive = any(other is leader for other in self._running)
            if alive and leader.prompt_pos < at:
                continue
            job.follows = None
            prompt = job.request.prompt_tokens
            source, target = leader.slots[0], job.slots[0]
            if not alive or source.history != prompt[:at]:
                self._place_prompt(job)
                continue
            target.copy_from(source, self.context)
            job.prompt_pos = job.cached = at
            self.prefixes_shared += 1
            if self.context.keeps_window_only and at >= MIN_CHECKPOINT_POSITION:
                self._share_checkpoint(source, target, prompt[:at])

    def _share_checkpoint(self, source: Slot, target: Slot, prefix: list[int]) -> None:
        """The window after a shared prefix goes to both slots' checkpoints (one copy of it in memory), so each
        can come back to the prefix once its own window moved on."""
        checkpoint = source.checkpoints.best_for(prefix, len(prefix))
        if checkpoint is None or checkpoint.position != len(prefix):
            self._save_checkpoint(source)
            checkpoint = source.checkpoints.best_for(prefix, len(prefix))
        if checkpoint is not None and checkpoint.position == len(prefix):
            target.checkpoints.add(checkpoint)

    def _restore_checkpoint(self, slot: Slot, prompt: list[int], cut: int) -> int:
        """Where the slot's sequence resumes when a cut at `cut` was refused (its window moved on): at the newest
        checkpoint the prompt matches, or at 0 with the sequence emptied."""
        checkpoint = slot.checkpoints.best_for(prompt, cut)
        if checkpoint is not None:
            if self.context.restore_window(slot.seq_id, checkpoint.position, checkpoint.state):
                self.checkpoint_restores += 1
                return checkpoint.position
            slot.checkpoints.clear()
        self.context.remove(slot.seq_id, 0, -1)
        return 0

    def _save_checkpoints(self) -> None:
        """Right after a decode: save the window of every job whose prompt was read up to its checkpoint."""
        for job in self._running:
            if job.checkpoint_at and job.prompt_pos == job.checkpoint_at:
                self._save_checkpoint(job.slots[0])
                job.checkpoint_at = 0

    def _save_checkpoint(self, slot: Slot) -> None:
        """Save the window of the slot's sequence as it is now, after `slot.history`; a failed copy only
        means no checkpoint."""
        try:
            state = self.context.save_window(slot.seq_id)
        except DecodeFailed as exc:
            log.warning("prefix checkpoint not saved: %s", exc)
            return
        slot.checkpoints.add(PrefixCheckpoint(tuple(slot.history), state))

    def _step(self) -> None:
        batch = self._batch
        batch.clear()
        self._take_shared_prefixes()
        self._compactor.close_gaps(self._slots, self.context)
        generating = [(j, c) for j in self._running for c in j.choices if c.finish is None and c.pending]
        room = draft_room(len(generating), self._steps.max_draft)
        for job, choice in generating:
            self._feed_choice(job, choice, room)
        readers = [job for job in self._running if job.reading_prompt]
        wants = [self._prompt_chunk(job) for job in readers]
        for job, n_tokens in zip(readers, fair_shares(wants, batch.free), strict=True):
            if n_tokens > 0:
                self._feed_prompt(job, n_tokens)
        self._deliver()
        if batch.size == 0:
            return
        moved = batch.order_by_sequence()
        if moved is not None:
            self._renumber_rows(moved)
        self.context.decode(batch)
        self._save_checkpoints()
        for job in list(self._running):
            try:
                if self._steps.after_decode(job):
                    self._finish(job)
            except Exception as exc:  # one job's failure (a constraint with no way forward) is its own
                log.exception("generation failed after decode")
                self._fail(job, exc, forget_cache=False)

    def _renumber_rows(self, moved: np.ndarray) -> None:
        """Point the rows this step's jobs wait on at where `Batch.order_by_sequence` moved them."""
        for job in self._running:
            for choice in job.choices:
                if choice.logits_at >= 0:
                    choice.logits_at = int(moved[choice.logits_at])
                choice.draft_rows = [int(moved[row]) for row in choice.draft_rows]
            job.prompt_logits_at = [(int(moved[row]), position) for row, position in job.prompt_logits_at]

    def _fail(self, job: Job, exc: Exception, *, forget_cache: bool) -> None:
        job.emit(exc if isinstance(exc, EdgeRuntimeError) else GenerationFailed(f"generation failed: {exc}"))
        self._running.remove(job)
        self._ended.append(job)
        self._release(job)
        if forget_cache:
            for slot in job.slots:
                slot.history.clear()
                self.context.remove(slot.seq_id, 0, -1)

    def _feed_choice(self, job: Job, choice: Choice, room_for_draft: int) -> None:
        slot = choice.slot
        room = self._batch.free
        tokens, choice.pending = choice.pending[:room], choice.pending[room:]
        for i, token in enumerate(tokens):
            is_last = i == len(tokens) - 1 and not choice.pending
            index = self._batch.add(token, len(slot.history), slot.seq_id, is_last)
            slot.history.append(token)
            if is_last:
                choice.logits_at = index
        limit = min(room_for_draft, self._batch.free)
        choice.draft = self._steps.guess(job, choice, limit) if choice.logits_at >= 0 and limit > 0 else []
        choice.draft_rows = []
        for token in choice.draft:
            choice.draft_rows.append(self._batch.add(token, len(slot.history), slot.seq_id, True))
            slot.history.append(token)

    def _prompt_chunk(self, job: Job) -> int:
        """The most prompt tokens `job` may read in one step."""
        if job.follows is not None:
            return 0
        want_all = job.scores_prompt
        chunk = min(self.prefill_chunk, SCORED_PROMPT_CHUNK) if want_all else self.prefill_chunk
        return min(chunk, read_until(job, self._running) - job.prompt_pos)

    def _feed_prompt(self, job: Job, n_tokens: int) -> None:
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

    def _finish(self, job: Job) -> None:
        self._running.remove(job)
        self._ended.append(job)
        self._release(job)
        self._steps.finish(job)
