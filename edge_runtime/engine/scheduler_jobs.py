"""What the scheduler thread keeps for each request: the mailbox its events go through, the KV-cache slots it
holds, and the state of each of its choices."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge_runtime.engine.prefix_checkpoints import SlotCheckpoints
from edge_runtime.engine.prompt_lookup import PromptLookup
from edge_runtime.engine.sampling import TokenSampler
from edge_runtime.engine.stop_strings import StopStringFilter
from edge_runtime.engine.tokenizer import IncrementalDecoder
from edge_runtime.engine.types import (
    Constraint,
    FinishReason,
    GenerationEvent,
    GenerationRequest,
    TokenLogprob,
)

if TYPE_CHECKING:
    from edge_runtime.engine.llama_handles import LlamaContext


class Mailbox:
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
class Slot:
    seq_id: int
    history: list[int] = field(default_factory=list)
    """Exactly the tokens in this sequence's KV cache, in order."""
    busy: bool = False
    checkpoints: SlotCheckpoints = field(default_factory=SlotCheckpoints)

    def copy_from(self, source: Slot, context: LlamaContext) -> None:
        """This slot's sequence becomes a copy of `source`'s, cache and history; what it held is dropped."""
        context.remove(self.seq_id, 0, -1)
        context.copy(source.seq_id, self.seq_id, 0, -1)
        self.history = list(source.history)


@dataclass
class Choice:
    index: int
    slot: Slot
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
    draft: list[int] = field(default_factory=list)
    """Guessed tokens after `pending` (prompt_lookup.py), decoded with them and kept only where the model would
    have chosen them itself."""
    draft_rows: list[int] = field(default_factory=list)
    """The batch entries of the draft tokens in the current step (their logits check the next guess)."""
    lookup: PromptLookup = field(default_factory=PromptLookup)


@dataclass
class Job:
    request: GenerationRequest
    mailbox: Mailbox
    outbox: list[GenerationEvent | BaseException] = field(default_factory=list)
    """Events of the current step, posted to the mailbox all at once."""
    slots: list[Slot] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    prompt_pos: int = 0
    cached: int = 0
    checkpoint_at: int = 0
    """Prompt position after which the first slot's window is saved (prefix_checkpoints.py); 0: none."""
    follows: Job | None = None
    """A running job whose prompt starts as this one's does and is still being read: this one reads nothing
    until that one has read `follow_at` tokens, then starts from a copy of its cache (scheduler.py)."""
    follow_at: int = 0
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
