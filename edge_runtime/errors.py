"""Typed errors shared by every layer; the server maps each type to one status code per API family."""

from __future__ import annotations


class EdgeRuntimeError(Exception):
    """Base of every error the runtime raises on purpose; its message is fit to show a client."""


class BadRequest(EdgeRuntimeError):
    """A request asks for something that cannot be done as asked (HTTP 400)."""


class ModelNotFound(EdgeRuntimeError):
    """Raised by the store and the model manager when no model has this id or alias (HTTP 404/400)."""

    def __init__(self, model_id: str) -> None:
        super().__init__(f"model '{model_id}' not found")
        self.model_id = model_id


class WrongModelType(BadRequest):
    """An llm was asked for embeddings, or an embedding model for text."""


class ContextLengthExceeded(BadRequest):
    """The prompt (plus what must be generated) does not fit in a slot's context."""

    def __init__(self, n_prompt: int, n_ctx: int) -> None:
        super().__init__(f"prompt has {n_prompt} tokens but the context holds {n_ctx}")
        self.n_prompt = n_prompt
        self.n_ctx = n_ctx


class Overloaded(EdgeRuntimeError):
    """Raised by the scheduler when its wait queue is full (HTTP 503 native, 429 OpenAI)."""


class ModelUnavailable(EdgeRuntimeError):
    """A registered model the server cannot serve through its own fault: its store file is missing, changed
    since import or unreadable (HTTP 503). The message names the model, never a server path."""

    def __init__(self, model_id: str, reason: str) -> None:
        super().__init__(f"model '{model_id}' is unavailable: {reason}")
        self.model_id = model_id
        self.reason = reason


class InsufficientMemory(EdgeRuntimeError):
    """Loading a model would need more RAM than the machine has free."""


class InsufficientStorage(EdgeRuntimeError):
    """Raised when a change cannot be written durably (disk full, quota, I/O error); nothing was changed, in
    memory or on disk (HTTP 507)."""


class ShuttingDown(EdgeRuntimeError):
    """Raised into running and queued generations when the server's shutdown grace period has run out, and at
    new ones after (HTTP 503 with Retry-After, in the family's error shape)."""
