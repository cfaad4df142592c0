"""What one decode's logits become for a job: each choice's next tokens (sampled under its constraint, then the
tokens the constraint forces), its text, logprobs and end, the echoed or scored prompt, and the final events.

The scheduler owns the batch, the slots and the queue; this owns what happens to a job between two decodes.
"""

from __future__ import annotations

import time

import numpy as np

from edge_runtime.engine.llama_handles import LlamaContext
from edge_runtime.engine.sampling import log_softmax_info, token_rank
from edge_runtime.engine.scheduler_jobs import Choice, Job
from edge_runtime.engine.tokenizer import Tokenizer
from edge_runtime.engine.types import (
    ChoiceFinished,
    FinishReason,
    GenerationDone,
    PromptScored,
    TextPiece,
    TokenLogprob,
)


class ChoiceSteps:
    """Reads the logits of one context after each decode, for the scheduler thread only."""

    def __init__(self, context: LlamaContext, tokenizer: Tokenizer, n_ctx: int, max_draft: int = 0) -> None:
        self.context = context
        self.tokenizer = tokenizer
        self.n_ctx = n_ctx
        self.max_draft = max_draft
        """Most guessed tokens checked after a choice's next one in the same decode (0: none)."""
        self.drafted = 0
        self.draft_accepted = 0
        self._mask = np.zeros(context.n_vocab, dtype=np.bool_)

    def after_decode(self, job: Job) -> bool:
        """Advance every choice of `job` whose logits the last decode computed; True when the job has finished
        (its final events are then emitted by `finish`)."""
        request = job.request
        if job.prompt_logits_at:
            self._collect_prompt_logprobs(job)
        if job.reading_prompt:
            return False
        if all(choice.logits_at < 0 for choice in job.choices):
            return False
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
                return True
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
            if choice.draft_rows:
                self._check_draft(job, choice, logits)
            else:
                self._advance(job, choice, logits)
        return all(choice.finish is not None for choice in job.choices)

    def _check_draft(self, job: Job, choice: Choice, logits: np.ndarray) -> None:
        """Choose tokens as `_advance` always does, from the logits after the choice's last token and then
        after each draft token, for as long as the choice takes the draft's tokens: those are decoded already.
        The first other choice goes to `pending`; the draft tokens after it leave the cache."""
        slot, draft, rows = choice.slot, choice.draft, choice.draft_rows
        choice.draft, choice.draft_rows = [], []
        start = len(slot.history) - len(draft)
        del slot.history[start:]
        taken = 0
        while True:
            self._advance(job, choice, logits)
            chosen = choice.pending
            if choice.finish is not None or draft[taken : taken + len(chosen)] != chosen:
                break
            slot.history.extend(chosen)
            taken += len(chosen)
            choice.pending = []
            logits = self.context.logits(rows[taken - 1])
        self.drafted += len(draft)
        self.draft_accepted += taken
        choice.lookup.checked(taken, self.max_draft)
        if taken < len(draft) and not self.context.remove(slot.seq_id, start + taken, -1):
            # The window before the cut is gone (it never is a few tokens back): read the sequence again.
            self.context.remove(slot.seq_id, 0, -1)
            choice.pending = [*slot.history, *choice.pending]
            slot.history.clear()

    def guess(self, job: Job, choice: Choice, limit: int) -> list[int]:
        """Up to `limit` draft tokens to follow what the choice has just been fed (its whole `pending`): what
        followed its last few tokens where they occurred before in the prompt or the answer, cut where the
        constraint, the length limit or an end token would stop. Asked by the scheduler only for a step that
        has room for them."""
        request = job.request
        room = self.n_ctx - len(choice.slot.history) - 1
        if request.max_tokens is not None:
            room = min(room, request.max_tokens - len(choice.tokens))
        draft = choice.lookup.draft([*request.prompt_tokens, *choice.tokens], min(limit, room))
        for i, token in enumerate(draft):
            if token in self.tokenizer.eog_ids:
                del draft[i:]
                break
        if draft and choice.constraint is not None:
            del draft[choice.constraint.allows(draft) :]
        return draft

    def _share_prompt(self, job: Job) -> None:
        """The other choices start from a copy of the first one's prompt cache."""
        first = job.slots[0]
        for slot in job.slots[1:]:
            slot.copy_from(first, self.context)

    def _collect_prompt_logprobs(self, job: Job) -> None:
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

    def _prompt_logprobs(self, job: Job) -> list[TokenLogprob | None]:
        """One entry per prompt token, the first None."""
        logprobs = list(job.echo_logprobs)
        logprobs.extend([None] * (len(job.request.prompt_tokens) - len(logprobs)))
        return logprobs

    def _emit_echo(self, job: Job) -> None:
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

    def _advance(self, job: Job, choice: Choice, logits: np.ndarray) -> None:
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

    def _take(self, job: Job, choice: Choice, token: int, entry: TokenLogprob | None) -> None:
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

    def _close_choice(self, job: Job, choice: Choice, reason: FinishReason, *, flush: bool = True) -> None:
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

    def finish(self, job: Job) -> None:
        """Emit the last events of a finished job: best_of's chosen texts, one ChoiceFinished per choice, then
        GenerationDone."""
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
                mask_seconds=tuple(seconds for c in job.choices for seconds in c.sampler.mask_seconds),
            )
        )
