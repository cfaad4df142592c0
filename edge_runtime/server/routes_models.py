"""Native models, providers, health, version; `/v1/models` also satisfies the openai SDK's list and retrieve."""

from __future__ import annotations

import functools
import time

import anyio
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp

import edge_runtime
from edge_runtime.api import native_types as nt
from edge_runtime.errors import ModelNotFound
from edge_runtime.server.catalog import PROVIDER_ID, CatalogModel
from edge_runtime.server.errors import ResourceNotFound
from edge_runtime.server.state import ServerState, endpoint, json_response, read_body

PROVIDER_TYPE = "inline::edge-runtime"


def native_model(served: CatalogModel) -> nt.Model:
    return nt.Model(
        identifier=served.identifier,
        provider_resource_id=served.entry.id,
        provider_id=PROVIDER_ID,
        metadata=served.metadata,
        model_type=served.model_type,
    )


def model_listing(served: CatalogModel, created: int) -> nt.ModelListing:
    """The native Model plus OpenAI's `id`, `object`, `created`, `owned_by`."""
    return nt.ModelListing(
        **native_model(served).model_dump(), id=served.identifier, created=created, owned_by=PROVIDER_ID
    )


def _resolve(state: ServerState, name: str) -> CatalogModel:
    try:
        return state.catalog.resolve(name)
    except ModelNotFound as exc:
        raise ResourceNotFound(str(exc)) from None


@endpoint("native")
async def list_models(request: Request, state: ServerState) -> ASGIApp:
    created = int(time.time())
    served = await anyio.to_thread.run_sync(state.catalog.list)
    return json_response(nt.ListModelsResponse(data=[model_listing(m, created) for m in served]))


@endpoint("native")
async def get_model(request: Request, state: ServerState) -> ASGIApp:
    served = _resolve(state, request.path_params["model_id"])
    return json_response(model_listing(served, int(time.time())))


@endpoint("native")
async def register_model(request: Request, state: ServerState) -> ASGIApp:
    body = await read_body(request, nt.RegisterModelRequest)
    register = functools.partial(
        state.catalog.register,
        body.model_id,
        provider_model_id=body.provider_model_id,
        model_type=body.model_type,
        metadata=body.metadata,
        provider_id=body.provider_id,
    )
    served = await anyio.to_thread.run_sync(register)  # the store's lock and an fsync
    return json_response(native_model(served))


@endpoint("native")
async def unregister_model(request: Request, state: ServerState) -> ASGIApp:
    name = request.path_params["model_id"]
    _resolve(state, name)
    await anyio.to_thread.run_sync(state.catalog.unregister, name)
    return json_response(None)


@endpoint("native")
async def providers(request: Request, state: ServerState) -> ASGIApp:
    engine = state.manager.config
    # The store's folder is not shown: a client has no use for a server path.
    config = {
        "profile": state.settings.profile,
        "n_slots": engine.n_slots,
        "n_ctx": engine.n_ctx_per_slot,
        "n_threads": engine.threads,
        "kv_cache_type": engine.kv_cache_type,
        "mmap": engine.mmap,
        "swa_full": engine.swa_full,
        "memory_budget_bytes": engine.memory_budget_bytes,
    }
    info = nt.ProviderInfo(
        provider_id=PROVIDER_ID, provider_type=PROVIDER_TYPE, config=config, health={"status": "OK"}
    )
    return json_response(nt.ListProvidersResponse(data=[info]))


@endpoint("native")
async def health(request: Request, state: ServerState) -> ASGIApp:
    return json_response(nt.HealthInfo(status="OK"))


@endpoint("native")
async def version(request: Request, state: ServerState) -> ASGIApp:
    return json_response(nt.VersionInfo(version=edge_runtime.__version__))


def routes() -> list[Route]:
    return [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models", register_model, methods=["POST"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/v1/models/{model_id:path}", unregister_model, methods=["DELETE"]),
        Route("/v1/providers", providers, methods=["GET"]),
        Route("/v1/health", health, methods=["GET"]),
        Route("/v1/version", version, methods=["GET"]),
    ]
