"""The server's configuration, filled by `edge-runtime serve` (or by tests) and owned by the app's lifespan."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

API_KEYS_ENV = "EDGE_RUNTIME_API_KEYS"


def api_keys_from_env() -> tuple[str, ...]:
    """Comma-separated keys from EDGE_RUNTIME_API_KEYS (blank entries dropped)."""
    return tuple(key.strip() for key in os.environ.get(API_KEYS_ENV, "").split(",") if key.strip())


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8321
    models_dir: Path | None = None
    """None: the store's default (EDGE_RUNTIME_MODELS_DIR or ./models)."""
    preload: tuple[str, ...] = ()
    """Model ids loaded at start; the others load on first use."""
    api_keys: tuple[str, ...] = ()
    """Empty: no authentication."""
    n_slots: int = 4
    n_ctx: int | None = None
    """Context per slot; None: the engine's default."""
    n_threads: int | None = None
    queue_size: int | None = None
    """Requests that may wait for a slot before the server answers 503/429; None: the engine's default."""
    idle_unload_s: float | None = None
    """Unload a model no request has used for this long (it loads again on next use); None: never."""
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 8 * 1024 * 1024
    import_default_model: bool = True
    """Import the default model into an empty store at start when the `default-model` extra is installed."""
    shutdown_grace_s: float = 10.0
    responses_max_stored: int = 10_000
    """Stored Responses (`store: true`) kept: the newest this many; older ones are pruned at each write."""
    responses_max_age_s: float = 30 * 24 * 3600.0
    """Stored Responses older than this (default 30 days) are neither returned nor continued, and are pruned."""
