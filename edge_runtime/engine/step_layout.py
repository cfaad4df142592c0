"""How a step's batch is laid out: the prompt tokens' shares of it, and busy slots kept on consecutive sequence
ids. Over a cache with a stream per sequence, llama.cpp puts sequences in one forward pass only while their ids
follow one another (see `Batch.order_by_sequence`): two streams in slots 0 and 2 cost two passes a step, in
slots 0 and 1 one."""

from __future__ import annotations

from dataclasses import dataclass

from edge_runtime.engine.llama_handles import LlamaContext
from edge_runtime.engine.prefix_checkpoints import SlotCheckpoints
from edge_runtime.engine.scheduler_jobs import Slot

GAP_PATIENCE = 3
"""Steps a gap between busy slots lasts before a job moves: a client's next request usually fills a slot just
freed within a step or two, and a move copies a whole stream (SmolLM2, 4,096 cells: 94 MB)."""


@dataclass
class SlotCompactor:
    """Keeps the busy slots on consecutive sequence ids, once a gap has lasted `patience` steps."""

    patience: int = GAP_PATIENCE
    moved: int = 0
    """Jobs moved so far."""
    _gap_steps: int = 0

    def close_gaps(self, slots: list[Slot], context: LlamaContext) -> None:
        """Move the highest busy slot into the lowest free one between busy slots until none is left. A move
        copies the whole stream (llama.cpp copies a sequence to another stream only whole) and swaps the two
        slots' sequence ids, so a job keeps its Slot objects; the slot left free holds what the moved one held,
        still there for prefix reuse. `slots` stays sorted by sequence id. A unified cache has no streams to
        keep together."""
        if context.params.unified_kv or lowest_hole(slots) is None:
            self._gap_steps = 0
            return
        self._gap_steps += 1
        if self._gap_steps < self.patience:
            return
        self._gap_steps = 0
        while (hole := lowest_hole(slots)) is not None:
            top = [slot for slot in slots if slot.busy][-1]
            hole.copy_from(top, context)
            top.seq_id, hole.seq_id = hole.seq_id, top.seq_id
            hole.checkpoints = SlotCheckpoints()
            for checkpoint in top.checkpoints:
                hole.checkpoints.add(checkpoint)
            slots.sort(key=lambda slot: slot.seq_id)
            self.moved += 1


def lowest_hole(slots: list[Slot]) -> Slot | None:
    """The free slot with the lowest sequence id between two busy ones (`slots` sorted by sequence id)."""
    busy = [slot.seq_id for slot in slots if slot.busy]
    return next((slot for slot in slots if not slot.busy and busy and busy[0] < slot.seq_id < busy[-1]), None)


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
