"""The Starlette app: both API families, /metrics and /openapi.json; its lifespan owns the store, the model
manager and the metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match, Route

from edge_runtime.engine.huge_pages import huge_page_bytes
from edge_runtime.engine.loaded_model import EngineConfig
from edge_runtime.engine.manager import ModelManager
from edge_runtime.engine.profiles import profile_config
from edge_runtime.errors import EdgeRuntimeError, ModelNotFound
from edge_runtime.grammar.grammar_compiler import GrammarCompiler
from edge_runtime.log_safe import loggable
from edge_runtime.server import routes_models, routes_native, routes_openai, routes_responses
from edge_runtime.server.catalog import ModelCatalog
from edge_runtime.server.errors import ErrorInfo, info_response
from edge_runtime.server.metrics import ServerMetrics
from edge_runtime.server.middleware import (
    AccessLogMiddleware,
    BearerAuthMiddleware,
    BodyLimitMiddleware,
    route_family,
)
from edge_runtime.server.openapi import openapi_document
from edge_runtime.server.request_guards import (
    AllowedHosts,
    HostGuardMiddleware,
    JsonBodyMiddleware,
    OriginGuardMiddleware,
    normalize_origin,
)
from edge_runtime.server.response_store import open_beside_models
from edge_runtime.server.settings import ServerSettings
from edge_runtime.server.shutdown import ShutdownGrace
from edge_runtime.server.state import ServerState
from edge_runtime.store import (
    PACKAGED_MODELS,
    DefaultModelUnavailable,
    ModelStore,
    default_models_dir,
    import_packaged_model,
    read_gguf_header,
)
from edge_runtime.upstreams.client import ClientPolicy
from edge_runtime.upstreams.service import UpstreamService

log = logging.getLogger("edge_runtime.server")


def _open_store(settings: ServerSettings) -> ModelStore:
    """The store; on first run (empty store) every packaged model whose extra is installed is imported: Gemma
    3 270M (the default, a base model) and SmolLM2-135M-Instruct (the one to chat with)."""
    store = ModelStore(settings.models_dir if settings.models_dir is not None else default_models_dir())
    if settings.import_default_model and not store.list():
        for name in PACKAGED_MODELS:
            try:
                entry = import_packaged_model(store, name)
            except DefaultModelUnavailable as exc:
                log.warning("the model store is empty and the packaged model '%s' is unavailable: %s", name, exc)
            else:
                log.info("imported the packaged model '%s' (alias %s)", entry.id, name)
    return store


class PreloadError(EdgeRuntimeError):
    """Raised before the server starts when a `--model` id names no model or its file is broken."""


def check_preload(settings: ServerSettings) -> None:
    """Resolve every `--model` id and check its file (unchanged since import, a readable GGUF header) before
    the server starts: a typo or a broken file is then one line from `serve`, not a failed lifespan's
    traceback. Opening the store imports the default model on first run, as the lifespan would."""
    store = _open_store(settings)
    catalog = ModelCatalog(store)
    for name in settings.preload:
        try:
            served = catalog.resolve(name)
        except ModelNotFound:
            ids = sorted(model.identifier for model in catalog.list())
            raise PreloadError(
                f"--model {loggable(name)}: no such model in {store.root}; it has "
                f"{', '.join(ids) if ids else 'none'} (`edge-runtime models list` shows them)"
            ) from None
        read_gguf_header(store.checked_path(served.entry))


def _client_policy(settings: ServerSettings) -> ClientPolicy:
    return ClientPolicy(
        connect_timeout_s=settings.upstream_connect_timeout_s,
        read_timeout_s=settings.upstream_read_timeout_s,
        retries=settings.upstream_retries,
    )


def _engine_config(settings: ServerSettings) -> EngineConfig:
    config = profile_config(settings.profile)
    if settings.n_slots is not None:
        config = replace(config, n_slots=settings.n_slots)
    if settings.n_ctx is not None:
        config = replace(config, n_ctx_per_slot=settings.n_ctx)
    if settings.n_threads is not None:
        config = replace(config, n_threads=settings.n_threads)
    if settings.queue_size is not None:
        config = replace(config, queue_size=settings.queue_size)
    if settings.idle_unload_s is not None:
        config = replace(config, idle_unload_s=settings.idle_unload_s)
    if settings.swa_full:
        config = replace(config, swa_full=True)
    if settings.kv_unified:
        config = replace(config, unified_kv=True)
    if not settings.huge_pages:
        config = replace(config, huge_pages=False)
    if settings.draft_tokens is not None:
        config = replace(config, draft_tokens=settings.draft_tokens)
    return config


async def _unload_idle_models(manager: ModelManager, idle_unload_s: float) -> None:
    """Runs for the server's life: looks for idle models a few times per idle period."""
    while True:
        await anyio.sleep(min(max(idle_unload_s / 4, 0.05), 30.0))
        manager.unload_idle()


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (several routes may share one path)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE and isinstance(route, Route):
            methods.update(route.methods or ())
    return sorted(methods)


async def http_exception(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods (with `Allow`), in the family's error shape, saying what to do."""
    if not isinstance(exc, HTTPException):
        info = ErrorInfo(500, "internal server error", "server_error", "internal_error")
        return info_response(info, route_family(request.url.path))
    path, method = loggable(request.url.path), request.method
    if exc.status_code == 404:
        message = f"no route {method} {path} (GET /openapi.json lists the routes)"
        info = ErrorInfo(404, message, "invalid_request_error", "not_found")
        return info_response(info, route_family(request.url.path))
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        message = f"{path} does not answer {method}; it answers {', '.join(allowed)}"
        info = ErrorInfo(405, message, "invalid_request_error", "method_not_allowed")
        return info_response(info, route_family(request.url.path), {"Allow": ", ".join(allowed)})
    info = ErrorInfo(exc.status_code, exc.detail, "invalid_request_error", str(exc.status_code))
    return info_response(info, route_family(request.url.path))


def _fail_all_generations(manager: ModelManager) -> Callable[[EdgeRuntimeError], None]:
    def fail_all(error: EdgeRuntimeError) -> None:
        for model in manager.loaded():
            if model.scheduler is not None:
                model.scheduler.fail_all(error)

    return fail_all


def create_app(settings: ServerSettings) -> Starlette:
    """The app; `app.state.shutdown_grace` is what `serve` tells when a stop signal arrives, and
    `app.state.startup_error` why the lifespan could not load a preloaded model (None when it could)."""
    metrics = ServerMetrics()
    shutdown_grace = ShutdownGrace(settings.shutdown_grace_s)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await anyio.to_thread.run_sync(_open_store, settings)
        log.info("model store: %s (%d models)", store.root.resolve(), len(store.list()))
        manager = ModelManager(store, _engine_config(settings))
        upstreams = UpstreamService(store.root, store.locked, _client_policy(settings))
        state = ServerState(settings, ModelCatalog(store), manager, metrics, GrammarCompiler(), upstreams)
        app.state.server = state
        shutdown_grace.attach(_fail_all_generations(manager))
        app.state.responses = open_beside_models(
            store.root, settings.responses_max_stored, settings.responses_max_age_s
        )
        janitor: asyncio.Task[None] | None = None
        prober = asyncio.create_task(upstreams.probe_forever(settings.upstream_health_interval_s))
        try:
            for name in settings.preload:
                served = state.catalog.resolve(name)
                try:
                    await manager.get_entry(served.entry, model_type=served.model_type)
                except EdgeRuntimeError as exc:
                    app.state.startup_error = exc
                    raise
                log.info("loaded model '%s'", name)
            if settings.idle_unload_s is not None:
                janitor = asyncio.create_task(_unload_idle_models(manager, settings.idle_unload_s))
            yield
        finally:
            shutdown_grace.detach()
            if janitor is not None:
                janitor.cancel()
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
            await upstreams.aclose()
            await anyio.to_thread.run_sync(manager.close_all)
            app.state.responses.close()

    async def metrics_endpoint(request: Request) -> Response:
        state: ServerState = request.app.state.server
        metrics.observe_engine(state.manager.loaded())
        metrics.observe_upstreams(state.upstreams.clients())
        metrics.huge_page_bytes.set(value=huge_page_bytes())
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    document = openapi_document()

    async def openapi_endpoint(request: Request) -> Response:
        return JSONResponse(document)

    routes = [
        *routes_models.routes(),
        *routes_native.routes(),
        *routes_openai.routes("/v1/openai/v1", with_models=True),
        *routes_openai.routes("/v1", with_models=False),
        *routes_responses.routes("/v1/openai/v1"),
        *routes_responses.routes("/v1"),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
    ]
    middleware = [
        Middleware(AccessLogMiddleware, metrics=metrics),
        Middleware(HostGuardMiddleware, allowed=AllowedHosts.build(settings.host, settings.allowed_hosts)),
        Middleware(OriginGuardMiddleware, origins=settings.cors_origins),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=[normalize_origin(origin) for origin in settings.cors_origins],
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["authorization", "content-type"],
            )
        )
    if settings.api_keys:
        middleware.append(Middleware(BearerAuthMiddleware, api_keys=settings.api_keys))
    middleware.append(Middleware(JsonBodyMiddleware))
    middleware.append(Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception},
    )
    app.state.shutdown_grace = shutdown_grace
    app.state.startup_error = None
    return app
