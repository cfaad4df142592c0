"""`edge-runtime serve`: the HTTP server on uvicorn (registered into edge_runtime.cli as a plugin)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from edge_runtime.engine.profiles import PROFILE_NAMES
from edge_runtime.engine.prompt_lookup import MAX_DRAFT_TOKENS
from edge_runtime.errors import BadRequest, EdgeRuntimeError
from edge_runtime.log_safe import OneLineFormatter
from edge_runtime.server.settings import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    ServerSettings,
    api_keys_from_env,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8321


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from edge_runtime.cli import models_dir_parent

    serve = subcommands.add_parser(
        "serve",
        parents=[models_dir_parent()],
        help="serve the native (Llama Stack) and OpenAI APIs over HTTP",
        description="Serve the native (Llama Stack) and OpenAI APIs. Binds to loopback unless --host says "
        "otherwise. SIGTERM/SIGINT stop accepting, let running requests finish within --grace seconds, "
        "then cancel them.",
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="ID",
        help="load this model at start (repeatable); other models load on first use",
    )
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="require `Authorization: Bearer KEY` (repeatable; also $EDGE_RUNTIME_API_KEYS, comma-separated)",
    )
    serve.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default="default",
        help="engine settings for the machine: `small` for boards with 1-2 GB (1 slot of 2048 tokens, a q8_0 "
        "KV cache, the model file memory-mapped, models held to 1 GiB by their estimate); the flags below "
        "override it",
    )
    serve.add_argument(
        "--slots", type=int, default=None, help="parallel sequences per model (default 4; small: 1)"
    )
    serve.add_argument(
        "--ctx", type=int, default=None, help="context tokens per slot (default 4096; small: 2048)"
    )
    serve.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    serve.add_argument("--queue", type=int, default=None, help="requests that may wait for a slot")
    serve.add_argument(
        "--swa-full",
        action="store_true",
        help="keep the full KV cache on sliding-window layers (Gemma 3): prefix reuse at any cut, for about "
        "200 MiB more on Gemma 3 270M at 4 x 4096 (default: the window only, with prefix checkpoints)",
    )
    serve.add_argument(
        "--kv-unified",
        action="store_true",
        help="one KV cache stream for all slots: a step where sequences add uneven token counts (JSON's forced "
        "runs) is one forward pass instead of several, but a seeded request then draws the same tokens alone, "
        "not always beside others; models with a sliding window (Gemma 3) are refused (default: one per slot)",
    )
    serve.add_argument(
        "--no-huge-pages",
        action="store_true",
        help="keep the process's memory on 4 KiB pages: by default, while idle, the server moves the model's "
        "resident memory (weights, KV cache) onto transparent huge pages, which makes a decode after a rest "
        "much cheaper (Linux 6.1+; the resident size does not grow)",
    )
    serve.add_argument(
        "--draft-tokens",
        type=int,
        default=None,
        metavar="N",
        help="tokens guessed from the prompt and the answer so far (prompt lookup) and checked with each "
        "sequence's next token in one decode (default 4; 0: off)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this browser origin (repeatable; `*` for any); a request from any other origin is refused "
        "(403)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host is NAME (repeatable; `*.example.com` for its subdomains, `*` for "
        "any); by default only localhost, IP addresses, the bound address and this machine's hostname are "
        "answered, which stops DNS rebinding",
    )
    serve.add_argument(
        "--idle-unload",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="unload a model no request has used for this long (default: keep models loaded)",
    )
    serve.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024, help="request body limit")
    serve.add_argument("--grace", type=float, default=10.0, help="seconds running requests get at shutdown")
    serve.add_argument(
        "--header-timeout",
        type=_positive_seconds,
        default=DEFAULT_HEADER_TIMEOUT_S,
        metavar="SECONDS",
        help="a client must send its whole request head within this long (default "
        f"{DEFAULT_HEADER_TIMEOUT_S:g}); else 408 and the connection is closed",
    )
    serve.add_argument(
        "--body-timeout",
        type=_positive_seconds,
        default=DEFAULT_BODY_TIMEOUT_S,
        metavar="SECONDS",
        help="longest pause between two pieces of a request body (default "
        f"{DEFAULT_BODY_TIMEOUT_S:g}); else 408 and the connection is closed",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"open HTTP connections, idle ones included (default {DEFAULT_MAX_CONNECTIONS}); one more is "
        "answered 503 and closed",
    )
    serve.add_argument(
        "--upstream-connect-timeout",
        type=_positive_seconds,
        default=5.0,
        metavar="SECONDS",
        help="remote models: longest wait to connect to an upstream (default 5)",
    )
    serve.add_argument(
        "--upstream-read-timeout",
        type=_positive_seconds,
        default=120.0,
        metavar="SECONDS",
        help="remote models: longest wait for an upstream's answer or its stream's next piece (default 120); "
        "then the next upstream listed for the model, or 504",
    )
    serve.add_argument(
        "--upstream-retries",
        type=int,
        default=2,
        metavar="N",
        help="remote models: further attempts of a non-streamed request after a connection error or a 429/503 "
        "(default 2, with backoff, honouring Retry-After)",
    )
    serve.add_argument(
        "--upstream-health-interval",
        type=_positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how often each upstream is probed for /v1/health and /metrics (default 30)",
    )
    serve.set_defaults(handler=run_serve)


def _api_keys(given: list[str]) -> tuple[str, ...]:
    """`--api-key` values, stripped (the bearer token is); an empty one is refused, not silently kept."""
    keys = tuple(key.strip() for key in given)
    if not all(keys):
        raise BadRequest(
            "--api-key was given an empty key; give it the key text, or leave --api-key out to serve without keys"
        )
    return keys


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    for name, value in (
        ("--slots", args.slots),
        ("--ctx", args.ctx),
        ("--threads", args.threads),
        ("--queue", args.queue),
        ("--max-body-bytes", args.max_body_bytes),
        ("--max-connections", args.max_connections),
    ):
        if value is not None and value < 1:
            raise BadRequest(f"{name} must be at least 1, got {value}")
    if args.upstream_retries < 0:
        raise BadRequest(f"--upstream-retries must be at least 0, got {args.upstream_retries}")
    if args.draft_tokens is not None and not 0 <= args.draft_tokens <= MAX_DRAFT_TOKENS:
        raise BadRequest(f"--draft-tokens must be between 0 and {MAX_DRAFT_TOKENS}, got {args.draft_tokens}")
    if not 0 < args.port < 65536:
        raise BadRequest(f"--port must be between 1 and 65535, got {args.port}")
    models_dir = getattr(args, "models_dir", None)
    return ServerSettings(
        host=args.host,
        port=args.port,
        models_dir=Path(models_dir) if models_dir is not None else None,
        preload=tuple(args.model),
        api_keys=_api_keys(args.api_key) + api_keys_from_env(),
        profile=args.profile,
        n_slots=args.slots,
        n_ctx=args.ctx,
        n_threads=args.threads,
        queue_size=args.queue,
        idle_unload_s=args.idle_unload,
        swa_full=args.swa_full,
        kv_unified=args.kv_unified,
        huge_pages=not args.no_huge_pages,
        draft_tokens=args.draft_tokens,
        cors_origins=tuple(args.cors_origin),
        allowed_hosts=tuple(args.allowed_host),
        max_body_bytes=args.max_body_bytes,
        shutdown_grace_s=args.grace,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        max_connections=args.max_connections,
        upstream_connect_timeout_s=args.upstream_connect_timeout,
        upstream_read_timeout_s=args.upstream_read_timeout,
        upstream_retries=args.upstream_retries,
        upstream_health_interval_s=args.upstream_health_interval,
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve until stopped. What the user can fix (a store folder that is a file, or a missing one they named;
    a `--model` that names no model or a broken file) fails before uvicorn starts, as one line and exit 2.
    The default folder is created on first run, where the default model is imported; a folder the user named
    is not, since a typo would otherwise serve an empty store."""
    from edge_runtime.cli import store_folder
    from edge_runtime.server.app import check_preload, create_app
    from edge_runtime.server.http_server import uvicorn_config
    from edge_runtime.server.shutdown import GracefulServer, stop_signals_exit_zero

    folder = store_folder(args)
    folder.checked(must_exist=folder.chosen)
    settings = settings_from_args(args)
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    check_preload(settings)
    app = create_app(settings)
    # uvicorn logs a failed lifespan as a traceback; a load failure the app explains is said once, below.
    uvicorn_log = logging.getLogger("uvicorn.error")
    quiet = _ExplainedStartupFailure(app)
    uvicorn_log.addFilter(quiet)
    # At the end of the grace the app cuts its own requests, each with a last word in its family's shape.
    server = GracefulServer(uvicorn_config(app, settings), app.state.shutdown_grace)
    try:
        with stop_signals_exit_zero():
            server.run()
    except SystemExit:  # uvicorn exits (3) when the lifespan fails
        if app.state.startup_error is None:
            raise
    finally:
        uvicorn_log.removeFilter(quiet)
    if app.state.startup_error is not None:
        raise StartupFailed(f"the server did not start: {app.state.startup_error}")
    return 0 if server.started else 1


class StartupFailed(EdgeRuntimeError):
    """A model given with `--model` passed the checks before start but did not load (`serve` exits 2)."""


class _ExplainedStartupFailure(logging.Filter):
    """Drops uvicorn's error records once the app has recorded why its start-up failed: the traceback of the
    lifespan and "Application startup failed", which `serve` replaces with one line."""

    def __init__(self, app: Starlette) -> None:
        super().__init__()
        self._app = app

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR or self._app.state.startup_error is None
