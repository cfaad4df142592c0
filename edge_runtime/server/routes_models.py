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
from edge_runtime.errors import BadRequest, ModelNotFound
from edge_runtime.server.catalog import PROVIDER_ID, CatalogModel
from edge_runtime.server.endpoint import endpoint, json_response, read_body
from edge_runtime.server.errors import ResourceNotFound
from edge_runtime.server.state import ServerState
from edge_runtime.upstreams.config import RemoteModel
from edge_runtime.upstreams.service import provider_summary

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


def remote_listing(model: RemoteModel, state: ServerState, created: int) -> nt.ModelListing:
    """A remote model: its upstream is its provider; the metadata says what serves it and how it is routed."""
    upstreams = state.upstreams.config().upstreams
    metadata = {
        **model.metadata,
        "remote": True,
        "provider_type": upstreams[model.upstreams[0]].provider if model.upstreams[0] in upstreams else None,
        "upstreams": list(model.upstreams),
        "routing": model.routing,
    }
    return nt.ModelListing(
        identifier=model.model_id,
        provider_resource_id=model.provider_model_id,
        provider_id=model.upstreams[0],
        metadata=metadata,
        model_type=model.model_type,
        id=model.model_id,
        created=created,
        owned_by=model.upstreams[0],
    )


def _is_local(state: ServerState, name: str) -> bool:
    try:
        state.catalog.resolve(name)
    except ModelNotFound:
        return False
    return True


def _resolve(state: ServerState, name: str) -> CatalogModel:
    try:
        return state.catalog.resolve(name)
    except ModelNotFound as exc:
        raise ResourceNotFound(str(exc)) from None


@endpoint("native")
async def list_models(request: Request, state: ServerState) -> ASGIApp:
    created = int(time.time())
    served = await anyio.to_thread.run_sync(state.catalog.list)
    remote = [remote_listing(m, state, created) for m in state.upstreams.remote_models()]
    return json_response(nt.ListModelsResponse(data=[model_listing(m, created) for m in served] + remote))


@endpoint("native")
async def get_model(request: Request, state: ServerState) -> ASGIApp:
    remote = state.upstreams.remote(request.path_params["model_id"])
    if remote is not None:
        return json_response(remote_listing(remote, state, int(time.time())))
    served = _resolve(state, request.path_params["model_id"])
    return json_response(model_listing(served, int(time.time())))


@endpoint("native")
async def register_model(request: Request, state: ServerState) -> ASGIApp:
    body = await read_body(request, nt.RegisterModelRequest)
    if body.provider_id not in (None, PROVIDER_ID):
        if _is_local(state, body.model_id):
            raise BadRequest(f"model_id: '{body.model_id}' is already served here; pick another id")
        remote = functools.partial(
            state.upstreams.register,
            body.model_id,
            provider_id=body.provider_id,
            provider_model_id=body.provider_model_id,
            model_type=body.model_type,
            metadata=body.metadata,
        )
        model = await anyio.to_thread.run_sync(remote)  # the store's lock and an fsync
        listing = remote_listing(model, state, int(time.time()))
        return json_response(nt.Model(**listing.model_dump(include=set(nt.Model.model_fields))))
    if state.upstreams.remote(body.model_id) is not None:
        raise BadRequest(f"model_id: '{body.model_id}' is already a remote model; unregister it first")
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
    if state.upstreams.remote(name) is not None:
        await anyio.to_thread.run_sync(state.upstreams.unregister, name)
        return json_response(None)
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
        "kv_unified": engine.unified_kv,
        "huge_pages": engine.huge_pages,
        "draft_tokens": engine.draft_tokens,
        "memory_budget_bytes": engine.memory_budget_bytes,
    }
    info = nt.ProviderInfo(
        provider_id=PROVIDER_ID, provider_type=PROVIDER_TYPE, config=config, health={"status": "OK"}
    )
    upstreams = [
        nt.ProviderInfo(
            provider_id=client.upstream.upstream_id,
            provider_type=client.upstream.provider_type.llama_stack_type,
            config=provider_summary(client.upstream),
            health=client.health.as_dict(),
        )
        for client in state.upstreams.clients()
    ]
    return json_response(nt.ListProvidersResponse(data=[info, *upstreams]))


@endpoint("native")
async def health(request: Request, state: ServerState) -> ASGIApp:
    """The server is up; each upstream's health, when there are any, as its last request or probe saw it."""
    clients = state.upstreams.clients()
    if not clients:
        return json_response(nt.HealthInfo(status="OK"))
    detail = {client.upstream.upstream_id: client.health.as_dict() for client in clients}
    return json_response({"status": "OK", "upstreams": detail})


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
