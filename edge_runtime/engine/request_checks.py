"""The checks that refuse a generation request the scheduler could never run, before anything is queued."""

from __future__ import annotations

from edge_runtime.engine.types import GenerationRequest, SamplingParams
from edge_runtime.errors import BadRequest, ContextLengthExceeded


def check_request(request: GenerationRequest, *, n_ctx: int, n_slots: int, n_vocab: int) -> None:
    """Raise BadRequest (or ContextLengthExceeded) naming what is wrong with `request`."""
    n_prompt = len(request.prompt_tokens)
    if n_prompt == 0:
        raise BadRequest("the prompt is empty")
    if n_prompt >= n_ctx:
        raise ContextLengthExceeded(n_prompt, n_ctx)
    sequences = max(request.n, request.best_of or 0)
    if request.n < 1:
        raise BadRequest(f"n must be at least 1, got {request.n}")
    if request.best_of is not None and request.best_of < request.n:
        raise BadRequest(f"best_of ({request.best_of}) must be at least n ({request.n})")
    if sequences > n_slots:
        raise BadRequest(f"{sequences} sequences asked but the model serves {n_slots} at once")
    if request.logprobs is not None and request.logprobs < 0:
        raise BadRequest(f"logprobs must be >= 0, got {request.logprobs}")
    if request.max_tokens is not None and request.max_tokens < 0:
        raise BadRequest(f"max_tokens must be >= 0, got {request.max_tokens}")
    bad = [t for t in [*request.prompt_tokens, *request.sampling.logit_bias] if not 0 <= t < n_vocab]
    if bad:
        raise BadRequest(f"token id {bad[0]} is outside the vocabulary of {n_vocab} tokens")
    _check_sampling(request.sampling)


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
