"""The server's configuration, filled by `edge-runtime serve` (or by tests) and owned by the app's lifespan."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.engine.profiles import ProfileName
from edge_runtime.errors import BadRequest

API_KEYS_ENV = "EDGE_RUNTIME_API_KEYS"

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_MAX_CONNECTIONS = 256


def api_keys_from_env() -> tuple[str, ...]:
    """Comma-separated keys from EDGE_RUNTIME_API_KEYS. Set but holding a blank entry (`""`, `a,,b`, `a,`) is
    an error: an unset secret substituted into the variable must not silently turn authentication off."""
    raw = os.environ.get(API_KEYS_ENV)
    if raw is None:
        return ()
    keys = tuple(key.strip() for key in raw.split(","))
    if not all(keys):
        raise BadRequest(
            f"{API_KEYS_ENV} holds an empty API key ({len(keys)} comma-separated entries, "
            f"{keys.count('')} blank); unset it to serve without keys"
        )
    return keys


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8321
    models_dir: Path | None = None
    """None: the store's default (store.models_dir_from_environment: per user, not the working folder)."""
    preload: tuple[str, ...] = ()
    """Model ids loaded at start; the others load on first use."""
    api_keys: tuple[str, ...] = ()
    """Empty: no authentication. A key that is empty or only whitespace is refused (it would match an empty
    bearer token)."""
    profile: ProfileName = "default"
    """The engine settings the values below (when not None) override: edge_runtime/engine/profiles.py."""
    n_slots: int | None = None
    n_ctx: int | None = None
    """Context per slot; None: the profile's."""
    n_threads: int | None = None
    queue_size: int | None = None
    """Requests that may wait for a slot before the server answers 503/429; None: the engine's default."""
    idle_unload_s: float | None = None
    """Unload a model no request has used for this long (it loads again on next use); None: never."""
    swa_full: bool = False
    """Full KV cache on sliding-window layers (`--swa-full`); False: the profile's (window only)."""
    kv_unified: bool = False
    """One KV stream for all slots (`--kv-unified`): throughput over seeded reproducibility beside others."""
    huge_pages: bool = True
    """Move resident memory onto transparent huge pages while idle; False: `--no-huge-pages`."""
    draft_tokens: int | None = None
    """Prompt-lookup draft length (`--draft-tokens`); None: the engine's default."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API; a request carrying any other `Origin` is a 403."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names served beyond the bound address, localhost, IP literals and the machine's hostname
    (`*.example.com` for subdomains, `*` for any): every other `Host` is a 403 (DNS rebinding)."""
    max_body_bytes: int = 8 * 1024 * 1024
    import_default_model: bool = True
    """Import the default model into an empty store at start when the `default-model` extra is installed."""
    shutdown_grace_s: float = 10.0
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    """A request head must arrive whole within this long of the connection opening (or of the previous
    response ending); otherwise 408 and the connection is closed."""
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    """Longest wait between two pieces of a request body; otherwise 408 and the connection is closed."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Open HTTP connections, idle keep-alive ones included; one more is answered 503 and closed."""
    responses_max_stored: int = 10_000
    """Stored Responses (`store: true`) kept: the newest this many; older ones are pruned at each write."""
    responses_max_age_s: float = 30 * 24 * 3600.0
    """Stored Responses older than this (default 30 days) are neither returned nor continued, and are pruned."""

    upstream_connect_timeout_s: float = 5.0
    upstream_read_timeout_s: float = 120.0
    """Longest wait for an upstream's answer, or for the next piece of its stream (then 504, or the next one)."""
    upstream_retries: int = 2
    """Further attempts of a non-streamed upstream request after a connection error or a 429/503."""
    upstream_health_interval_s: float = 30.0
    """How often each upstream is probed (GET models) for /v1/health and /metrics."""

    def __post_init__(self) -> None:
        for index, key in enumerate(self.api_keys):
            if not key.strip():
                raise BadRequest(f"API key {index + 1} of {len(self.api_keys)} is empty; every key needs text")
        for name, value in (
            ("header timeout", self.header_timeout_s),
            ("body timeout", self.body_timeout_s),
            ("max connections", self.max_connections),
            ("upstream connect timeout", self.upstream_connect_timeout_s),
            ("upstream read timeout", self.upstream_read_timeout_s),
            ("upstream health interval", self.upstream_health_interval_s),
        ):
            if not value > 0:
                raise BadRequest(f"the {name} must be more than 0, got {value}")
