"""`/openapi.json`, generated from the wire types so the document cannot drift from what the routes accept;
each operation lists the error statuses its route answers, with the family's error body."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import edge_runtime
from edge_runtime.api import native_types as nt
from edge_runtime.api import openai_types as ot
from edge_runtime.api import responses_types as rt
from edge_runtime.server.errors import NativeError, NativeValidationError, OpenAIError
from edge_runtime.server.middleware import route_family

GUARDED = (401, 403)
"""Every route but the health check: a missing key (when keys are configured), a refused Host or Origin."""
WITH_BODY = (400, 413, 415)
NATIVE_INFERENCE = (*GUARDED, *WITH_BODY, 503)
OPENAI_INFERENCE = (*GUARDED, *WITH_BODY, 404, 429, 503)

ERROR_DESCRIPTIONS = {
    400: "The request is invalid; the message says what is wrong (native validation errors list each location)",
    401: "Missing or invalid API key (only when the server was started with keys)",
    403: "The Host or Origin header is not allowed (see --allowed-host, --cors-origin), or the operation is "
    "refused",
    404: "No model has this id or alias (or, on the Responses routes, no stored response has this id)",
    413: "The body is larger than --max-body-bytes",
    415: "The body was not sent as Content-Type: application/json",
    429: "The model's queue is full; retry after Retry-After seconds",
    503: "The model's queue is full (native routes) or there is not enough memory to load the model; retry "
    "after Retry-After seconds",
    507: "The model registry could not be written (e.g. the disk is full); nothing was changed",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}


@dataclass(frozen=True)
class Operation:
    method: Literal["get", "post", "delete"]
    path: str
    request: type[BaseModel] | None
    response: type[BaseModel] | None
    summary: str
    errors: tuple[int, ...]


NATIVE_OPERATIONS: list[Operation] = [
    Operation(
        "post",
        "/v1/inference/completion",
        nt.CompletionRequest,
        nt.CompletionResponse,
        "Text completion",
        NATIVE_INFERENCE,
    ),
    Operation(
        "post",
        "/v1/inference/chat-completion",
        nt.ChatCompletionRequest,
        nt.ChatCompletionResponse,
        "Chat completion",
        NATIVE_INFERENCE,
    ),
    Operation(
        "post",
        "/v1/inference/embeddings",
        nt.EmbeddingsRequest,
        nt.EmbeddingsResponse,
        "Embeddings",
        NATIVE_INFERENCE,
    ),
    Operation("get", "/v1/models", None, nt.ListModelsResponse, "List models", GUARDED),
    Operation(
        "post", "/v1/models", nt.RegisterModelRequest, nt.Model, "Register a model id", (*GUARDED, *WITH_BODY, 507)
    ),
    Operation("get", "/v1/models/{model_id}", None, nt.ModelListing, "Get a model", (*GUARDED, 404)),
    Operation("delete", "/v1/models/{model_id}", None, None, "Unregister a model id", (*GUARDED, 404)),
    Operation("get", "/v1/providers", None, nt.ListProvidersResponse, "List providers", GUARDED),
    Operation("get", "/v1/health", None, nt.HealthInfo, "Health", (403,)),
    Operation("get", "/v1/version", None, nt.VersionInfo, "Version", GUARDED),
]


def openai_operations(prefix: str) -> list[Operation]:
    return [
        Operation(
            "post",
            f"{prefix}/completions",
            ot.CompletionRequest,
            ot.Completion,
            "OpenAI completions",
            OPENAI_INFERENCE,
        ),
        Operation(
            "post",
            f"{prefix}/chat/completions",
            ot.ChatCompletionRequest,
            ot.ChatCompletion,
            "OpenAI chat",
            OPENAI_INFERENCE,
        ),
        Operation(
            "post",
            f"{prefix}/embeddings",
            ot.EmbeddingRequest,
            ot.CreateEmbeddingResponse,
            "OpenAI embeddings",
            OPENAI_INFERENCE,
        ),
        Operation(
            "post",
            f"{prefix}/responses",
            rt.ResponseCreateRequest,
            rt.Response,
            "OpenAI Responses: create",
            OPENAI_INFERENCE,
        ),
        Operation(
            "get",
            f"{prefix}/responses/{{response_id}}",
            None,
            rt.Response,
            "OpenAI Responses: retrieve",
            (*GUARDED, 404),
        ),
        Operation(
            "delete",
            f"{prefix}/responses/{{response_id}}",
            None,
            rt.ResponseDeleted,
            "OpenAI Responses: delete",
            (*GUARDED, 404),
        ),
    ]


OPENAI_MODEL_OPERATIONS: list[Operation] = [
    Operation("get", "/v1/openai/v1/models", None, ot.ModelList, "OpenAI list models", GUARDED),
    Operation(
        "get",
        "/v1/openai/v1/models/{model_id}",
        None,
        ot.OpenAIModel,
        "OpenAI retrieve model",
        (*GUARDED, 404),
    ),
]

ERROR_MODELS: tuple[type[BaseModel], ...] = (NativeError, NativeValidationError, OpenAIError)


def _component_name(model: type[BaseModel]) -> str:
    family = "OpenAI" if model.__module__ in (ot.__name__, rt.__name__) else ""
    return family + model.__name__


def _error_response(status: int, path: str, refs: dict[Any, Any]) -> dict[str, Any]:
    def ref(model: type[BaseModel]) -> Any:
        return refs[(model, "serialization")]

    if route_family(path) == "openai":
        schema = ref(OpenAIError)
    elif status == 400:
        schema = {"oneOf": [ref(NativeError), ref(NativeValidationError)]}
    else:
        schema = ref(NativeError)
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": schema}},
    }
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    return response


def openapi_document() -> dict[str, Any]:
    operations = (
        NATIVE_OPERATIONS
        + openai_operations("/v1/openai/v1")
        + openai_operations("/v1")
        + OPENAI_MODEL_OPERATIONS
    )
    models = {m for op in operations for m in (op.request, op.response) if m is not None}
    modes: tuple[Literal["validation", "serialization"], ...] = ("validation", "serialization")
    keyed = sorted(
        ((m, mode) for m in models for mode in modes),
        key=lambda pair: (_component_name(pair[0]), pair[1]),
    )
    keyed += [(model, "serialization") for model in ERROR_MODELS]
    refs, schema = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        operation: dict[str, Any] = {"summary": op.summary, "responses": {}}
        if op.request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.request, "validation")]}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if op.response is not None:
            ok["content"] = {"application/json": {"schema": refs[(op.response, "serialization")]}}
        operation["responses"]["200"] = ok
        for status in sorted(op.errors):
            operation["responses"][str(status)] = _error_response(status, op.path, refs)
        names = re.findall(r"{(\w+)}", op.path)
        if names:
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names
            ]
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "edge-runtime", "version": edge_runtime.__version__},
        "paths": paths,
        "components": {"schemas": schema.get("$defs", {})},
    }
