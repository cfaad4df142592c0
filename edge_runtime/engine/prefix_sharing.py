"""Which running job a new one waits for when both prompts start alike: an extraction script's first wave sends
one set of instructions with several documents at once, and each slot would otherwise read the instructions
itself. The scheduler copies the leader's cache once the leader has read the shared part (scheduler.py)."""

from __future__ import annotations

from collections.abc import Sequence

from edge_runtime.engine.scheduler_jobs import Job

MIN_SHARED_READ = 64
"""A job waits for another one reading the same prefix, and copies its cache, only to save this many tokens."""


def leader_for(job: Job, running: Sequence[Job]) -> tuple[Job | None, int]:
    """The running job still reading a prompt that shares the most with this one's, and how far they share,
    when waiting for it saves at least MIN_SHARED_READ tokens over what the job's first slot holds."""
    prompt = job.request.prompt_tokens
    if job.scores_prompt:  # every prompt token's logits are wanted: the job reads its whole prompt
        return None, 0
    best: Job | None = None
    best_at = min(common_prefix(job.slots[0].history, prompt), len(prompt) - 1) + MIN_SHARED_READ
    for other in running:
        if other is job or other.follows is not None:
            continue
        at = min(common_prefix(other.request.prompt_tokens, prompt), len(prompt) - 1)
        if other.prompt_pos < at and at >= best_at:
            best, best_at = other, at
    return best, (best_at if best is not None else 0)


def read_until(job: Job, running: Sequence[Job]) -> int:
    """Where the job's prompt read stops next: its checkpoint, a follower's shared prefix, or its end."""
    stops = [job.checkpoint_at, *(other.follow_at for other in running if other.follows is job)]
    return min((at for at in stops if at > job.prompt_pos), default=len(job.request.prompt_tokens))


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
