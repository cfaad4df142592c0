"""What the routes share, built by the app's lifespan: catalog, model manager, metrics, grammar cache."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp

from edge_runtime.errors import WrongModelType
from edge_runtime.log_safe import loggable_list
from edge_runtime.server.catalog import CatalogModel, ModelCatalog, ModelType
from edge_runtime.server.errors import ClientDisconnected, Family, error_response, validation_response
from edge_runtime.server.metrics import ServerMetrics
from edge_runtime.server.settings import ServerSettings

if TYPE_CHECKING:
    from edge_runtime.engine.loaded_model import LoadedModel
    from edge_runtime.engine.manager import ModelManager
    from edge_runtime.grammar import GrammarCompiler

Body = TypeVar("Body", bound=BaseModel)
log = logging.getLogger("edge_runtime.server")


@dataclass
class ServerState:
    settings: ServerSettings
    catalog: ModelCatalog
    manager: ModelManager
    metrics: ServerMetrics
    grammars: GrammarCompiler

    async def model(self, name: str, model_type: ModelType) -> tuple[CatalogModel, LoadedModel]:
        """The loaded model behind a served id, loading it on first use; the id must serve `model_type`."""
        served = self.catalog.resolve(name)
        if served.model_type != model_type:
            raise WrongModelType(
                f"model '{name}' is an {served.model_type} model; this endpoint needs an {model_type} model"
            )
        return served, await self.manager.get_entry(served.entry, model_type=model_type)


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


async def read_body(request: Request, model: type[Body]) -> Body:
    """Validate the JSON body against a wire type (pydantic reports bad JSON as a validation error too).
    Native types ignore unknown keys (Llama Stack clients send extras); the top-level ones are logged (the
    first few, escaped)."""
    try:
        raw = await request.body()
    except ClientDisconnect:
        raise ClientDisconnected("the client left before sending the whole body") from None
    body = model.model_validate_json(raw)
    if model.model_config.get("extra") == "ignore":
        ignored = sorted(set(json.loads(raw)) - set(model.model_fields))
        if ignored:
            log.info(
                "request_id=%s ignored unknown keys: %s", request.state.request_id, loggable_list(ignored)
            )
    return body


def json_response(
    payload: BaseModel | list[Any] | dict[str, Any] | None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Every field serialized, nulls included, with the wire names."""
    data = payload.model_dump(mode="json", by_alias=True) if isinstance(payload, BaseModel) else payload
    return Response(
        json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


UNENFORCED_HEADER = "x-unenforced-schema-keywords"
"""Names what a lenient schema compile (OpenAI `strict: false`) left out of the grammar, "; "-separated."""


def unenforced_headers(unenforced: Sequence[str]) -> dict[str, str]:
    if not unenforced:
        return {}
    return {UNENFORCED_HEADER: "; ".join(unenforced).encode("ascii", "backslashreplace").decode("ascii")}


async def _body_read(request: Request) -> bytes | None:
    """The body a failed validation was given (already read, so cached), for locating its errors."""
    try:
        return await request.body()
    except Exception:  # noqa: BLE001 - without the body the errors keep pydantic's own locations
        return None


Handler = Callable[[Request, ServerState], Awaitable[ASGIApp]]
"""A route body; it returns a Response or any ASGI response (e.g. an event stream)."""


def endpoint(
    family: Family, prompt_param: str = "messages"
) -> Callable[[Handler], Callable[[Request], Awaitable[ASGIApp]]]:
    """Wraps a handler so every error leaves in its family's shape (unexpected ones as a logged 500);
    `prompt_param` is the field a too-long prompt error names."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[ASGIApp]]:
        async def route(request: Request) -> ASGIApp:
            try:
                return await handler(request, server_state(request))
            except ValidationError as exc:
                return validation_response(exc, family, await _body_read(request))
            except Exception as exc:  # noqa: BLE001 - every typed error maps to its status; the rest is a logged 500
                return error_response(exc, family, prompt_param)

        route.__name__ = handler.__name__
        route.__doc__ = handler.__doc__
        return route

    return wrap
