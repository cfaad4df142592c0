"""What the routes share, built by the app's lifespan: catalog, model manager, metrics, grammar cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from edge_runtime.api.errors import ParameterError
from edge_runtime.errors import WrongModelType
from edge_runtime.server.catalog import CatalogModel, ModelCatalog, ModelType
from edge_runtime.server.metrics import ServerMetrics
from edge_runtime.server.settings import ServerSettings
from edge_runtime.upstreams.service import UpstreamService

if TYPE_CHECKING:
    from edge_runtime.engine.loaded_model import LoadedModel
    from edge_runtime.engine.manager import ModelManager
    from edge_runtime.grammar import GrammarCompiler


@dataclass
class ServerState:
    settings: ServerSettings
    catalog: ModelCatalog
    manager: ModelManager
    metrics: ServerMetrics
    grammars: GrammarCompiler
    upstreams: UpstreamService

    async def model(self, name: str, model_type: ModelType) -> tuple[CatalogModel, LoadedModel]:
        """The loaded model behind a served id, loading it on first use; the id must serve `model_type`.
        A remote model reaches here only from a route that does not proxy (the Responses API): a 400."""
        if self.upstreams.remote(name) is not None:
            raise ParameterError(
                "model", f"'{name}' is a remote model; this endpoint serves local models only (use chat/completions)"
            )
        served = self.catalog.resolve(name)
        if served.model_type != model_type:
            raise WrongModelType(
                f"model '{name}' is an {served.model_type} model; this endpoint needs an {model_type} model"
            )
        return served, await self.manager.get_entry(served.entry, model_type=model_type)


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state
