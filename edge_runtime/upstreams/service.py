"""The server's view of its upstreams: the remote models (re-read when `upstreams.json` changes), one client
per upstream, failover across the upstreams listed for a model, health probes, and API registrations that may
only name an upstream the operator configured."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import anyio

from edge_runtime.errors import BadRequest, ModelNotFound
from edge_runtime.upstreams.client import ClientPolicy, UpstreamClient
from edge_runtime.upstreams.config import (
    UPSTREAMS_FILE,
    RemoteModel,
    Upstream,
    UpstreamConfigError,
    UpstreamsConfig,
    UpstreamsFile,
    with_model,
    without_model,
)
from edge_runtime.upstreams.errors import UpstreamFailed
from edge_runtime.upstreams.providers import PROVIDER_TYPES

log = logging.getLogger("edge_runtime.upstreams")
T = TypeVar("T")


class UpstreamService:
    def __init__(self, store_root: Path, store_lock: Any, policy: ClientPolicy | None = None) -> None:
        self._file = UpstreamsFile(store_root / UPSTREAMS_FILE, store_lock)
        self.policy = policy or ClientPolicy()
        self._clients: dict[str, UpstreamClient] = {}
        self._retired: list[UpstreamClient] = []
        self._broken_logged = False

    def config(self) -> UpstreamsConfig:
        """What the file says now; a broken file is logged once and serves no remote models."""
        try:
            config = self._file.read()
        except UpstreamConfigError as error:
            if not self._broken_logged:
                self._broken_logged = True
                log.error("%s; serving no remote models until it is fixed", error)
            return UpstreamsConfig()
        self._broken_logged = False
        return config

    def remote(self, model_id: str) -> RemoteModel | None:
        return self.config().models.get(model_id)

    def remote_models(self) -> list[RemoteModel]:
        return list(self.config().models.values())

    def client(self, upstream: Upstream) -> UpstreamClient:
        """The client for an upstream, a new one when the operator changed where it is or how it is reached."""
        current = self._clients.get(upstream.upstream_id)
        if current is not None and current.upstream == upstream:
            return current
        if current is not None:
            self._retired.append(current)
        client = self._clients[upstream.upstream_id] = UpstreamClient(upstream, self.policy)
        return client

    def clients(self) -> list[UpstreamClient]:
        return [self.client(upstream) for upstream in self.config().upstreams.values()]

    def candidates(self, model: RemoteModel) -> list[UpstreamClient]:
        """The model's upstreams in the order to try them: as listed, or the least busy first."""
        upstreams = self.config().upstreams
        clients = [self.client(upstreams[name]) for name in model.upstreams if name in upstreams]
        if model.routing == "least-loaded":
            clients.sort(key=lambda c: c.in_flight)  # stable: ties keep the listed order
        return clients

    async def first_answer(self, model: RemoteModel, attempt: Callable[[UpstreamClient], Awaitable[T]]) -> T:
        """`attempt` on each upstream in turn until one answers; the last failure if none does."""
        failure: UpstreamFailed | None = None
        for client in self.candidates(model):
            try:
                return await attempt(client)
            except UpstreamFailed as error:
                log.warning("model '%s': %s; trying the next upstream", model.model_id, error)
                failure = error
        raise failure or UpstreamFailed(f"model '{model.model_id}' has no configured upstream")

    async def open_stream(
        self, model: RemoteModel, path: str, body_for: Callable[[UpstreamClient], dict[str, Any]],
        stack: AsyncExitStack,
    ) -> AsyncIterator[str]:
        """The event-stream lines of the first upstream that accepts the request (it stays open in `stack`)."""

        async def attempt(client: UpstreamClient) -> AsyncIterator[str]:
            return await stack.enter_async_context(client.stream(path, body_for(client)))

        return await self.first_answer(model, attempt)

    def register(
        self, model_id: str, *, provider_id: str, provider_model_id: str | None, model_type: str | None,
        metadata: dict[str, Any] | None,
    ) -> RemoteModel:
        """`POST /v1/models` naming a configured upstream (blocks on the store's lock: call from a thread)."""
        if provider_id not in self.config().upstreams:
            raise BadRequest(
                f"provider_id: no upstream '{provider_id}' is configured (an operator adds one with "
                "`edge-runtime models add-remote`); a client cannot add a URL"
            )
        model = RemoteModel(
            model_id, provider_model_id or model_id, (provider_id,), "embedding" if model_type == "embedding" else "llm",
            metadata=dict(metadata or {}),
        )
        result = self._file.change(lambda config: with_model(config, model, replace_existing=False))
        return result.models[model_id]

    def unregister(self, model_id: str) -> None:
        if model_id not in self._file.read().models:
            raise ModelNotFound(model_id)
        self._file.change(lambda config: without_model(config, model_id))

    def add_remote(self, upstreams: list[Upstream], model: RemoteModel) -> RemoteModel:
        """The CLI's `models add-remote`: the upstreams (new or the same as configured) and the model."""

        def edit(config: UpstreamsConfig) -> UpstreamsConfig:
            from edge_runtime.upstreams.config import with_upstream

            for upstream in upstreams:
                config = with_upstream(config, upstream)
            return with_model(config, model, replace_existing=True)

        return self._file.change(edit).models[model.model_id]

    async def probe_all(self) -> None:
        async with anyio.create_task_group() as group:
            for client in self.clients():
                group.start_soon(client.probe)

    async def probe_forever(self, interval_s: float) -> None:
        while True:
            await self.probe_all()
            await anyio.sleep(interval_s)

    async def aclose(self) -> None:
        for client in [*self._clients.values(), *self._retired]:
            await client.aclose()
        self._clients.clear()
        self._retired.clear()


def provider_summary(upstream: Upstream) -> dict[str, Any]:
    """What `/v1/providers` says of an upstream: never the key nor a server address (a client has no use for
    either), only what it speaks and where its key is read from."""
    kind = PROVIDER_TYPES[upstream.provider]
    return {
        "provider": upstream.provider,
        "dialect": kind.dialect.name,
        "api_key": "environment" if upstream.api_key_env else "file" if upstream.api_key_file else None,
    }

