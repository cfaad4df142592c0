"""Prefix checkpoints: copies of a sequence's sliding-window cache taken where a later prompt is likely to cut.

With `swa_full` off, Gemma 3's sliding-window layers keep only the last window of a sequence, so once a slot went
on past a shared prefix (an extraction script's instructions, then a document and an answer), a cut after the
prefix is refused and the prompt would be read afresh. When a prompt shares a prefix with what its slot held and
the cut is refused, the scheduler reads the prompt in two parts and saves the window right after the shared
prefix; the next prompt with that prefix sets the window back (the full-attention layers still hold the prefix)
and reads only its tail. llama-server keeps context checkpoints for the same reason.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from dataclasses import dataclass

CHECKPOINTS_PER_SLOT = 2
"""Newest kept. Each is one sequence's window: at most n_swa + n_ubatch cells of the sliding-window layers
(Gemma 3 270M, window 512: 7.5 MiB at a 700-token prefix, 11.8 MiB at most); 4 slots hold at most 94 MiB."""

MIN_CHECKPOINT_POSITION = 64
"""A shorter shared prefix is read again rather than copied out."""


@dataclass(frozen=True)
class PrefixCheckpoint:
    tokens: tuple[int, ...]
    """The prefix the window was saved after: kept whole (a few KiB) so a match is exact, not a hash's."""
    state: ctypes.Array[ctypes.c_uint8]
    """llama.cpp's sliding-window-only state of the sequence (LLAMA_STATE_SEQ_FLAGS_SWA_ONLY)."""

    @property
    def position(self) -> int:
        return len(self.tokens)


class SlotCheckpoints:
    """The newest few checkpoints of one slot."""

    def __init__(self, limit: int = CHECKPOINTS_PER_SLOT) -> None:
        self.limit = limit
        self._checkpoints: list[PrefixCheckpoint] = []

    def __len__(self) -> int:
        return len(self._checkpoints)

    def __iter__(self) -> Iterator[PrefixCheckpoint]:
        return iter(list(self._checkpoints))

    def add(self, checkpoint: PrefixCheckpoint) -> None:
        self._checkpoints = [c for c in self._checkpoints if c.tokens != checkpoint.tokens]
        self._checkpoints.append(checkpoint)
        del self._checkpoints[: -self.limit]

    def has(self, prefix: list[int]) -> bool:
        return any(c.position == len(prefix) and list(c.tokens) == prefix for c in self._checkpoints)

    def best_for(self, prompt: list[int], cut: int) -> PrefixCheckpoint | None:
        """The longest checkpoint at or before `cut` whose prefix the prompt starts with (the slot's cache holds
        `prompt[:cut]`, so it holds that prefix too)."""
        fitting = [
            c for c in self._checkpoints if c.position <= cut and list(c.tokens) == prompt[: c.position]
        ]
        return max(fitting, key=lambda c: c.position, default=None)

    def clear(self) -> None:
        self._checkpoints.clear()
