"""`/openapi.json`, generated from the wire types so the document cannot drift from what the routes accept."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import edge_runtime
from edge_runtime.api import native_types as nt
from edge_runtime.api import openai_types as ot
from edge_runtime.api import responses_types as rt

Operation = tuple[str, str, type[BaseModel] | None, type[BaseModel] | None, str]

NATIVE_OPERATIONS: list[Operation] = [
    ("post", "/v1/inference/completion", nt.CompletionRequest, nt.CompletionResponse, "Text completion"),
    (
        "post",
        "/v1/inference/chat-completion",
        nt.ChatCompletionRequest,
        nt.ChatCompletionResponse,
        "Chat completion",
    ),
    ("post", "/v1/inference/embeddings", nt.EmbeddingsRequest, nt.EmbeddingsResponse, "Embeddings"),
    ("get", "/v1/models", None, nt.ListModelsResponse, "List models"),
    ("post", "/v1/models", nt.RegisterModelRequest, nt.Model, "Register a model id"),
    ("get", "/v1/models/{model_id}", None, nt.ModelListing, "Get a model"),
    ("delete", "/v1/models/{model_id}", None, None, "Unregister a model id"),
    ("get", "/v1/providers", None, nt.ListProvidersResponse, "List providers"),
    ("get", "/v1/health", None, nt.HealthInfo, "Health"),
    ("get", "/v1/version", None, nt.VersionInfo, "Version"),
]


def openai_operations(prefix: str) -> list[Operation]:
    return [
        ("post", f"{prefix}/completions", ot.CompletionRequest, ot.Completion, "OpenAI completions"),
        ("post", f"{prefix}/chat/completions", ot.ChatCompletionRequest, ot.ChatCompletion, "OpenAI chat"),
        (
            "post",
            f"{prefix}/embeddings",
            ot.EmbeddingRequest,
            ot.CreateEmbeddingResponse,
            "OpenAI embeddings",
        ),
        ("post", f"{prefix}/responses", rt.ResponseCreateRequest, rt.Response, "OpenAI Responses: create"),
        ("get", f"{prefix}/responses/{{response_id}}", None, rt.Response, "OpenAI Responses: retrieve"),
        ("delete", f"{prefix}/responses/{{response_id}}", None, rt.ResponseDeleted, "OpenAI Responses: delete"),
    ]


OPENAI_MODEL_OPERATIONS: list[Operation] = [
    ("get", "/v1/openai/v1/models", None, ot.ModelList, "OpenAI list models"),
    ("get", "/v1/openai/v1/models/{model_id}", None, ot.OpenAIModel, "OpenAI retrieve model"),
]


def _component_name(model: type[BaseModel]) -> str:
    family = "OpenAI" if model.__module__ in (ot.__name__, rt.__name__) else ""
    return family + model.__name__


def openapi_document() -> dict[str, Any]:
    operations = (
        NATIVE_OPERATIONS
        + openai_operations("/v1/openai/v1")
        + openai_operations("/v1")
        + OPENAI_MODEL_OPERATIONS
    )
    models = {m for op in operations for m in (op[2], op[3]) if m is not None}
    modes: tuple[Literal["validation", "serialization"], ...] = ("validation", "serialization")
    keyed = sorted(
        ((m, mode) for m in models for mode in modes),
        key=lambda pair: (_component_name(pair[0]), pair[1]),
    )
    refs, schema = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for method, path, request, response, summary in operations:
        operation: dict[str, Any] = {"summary": summary, "responses": {}}
        if request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(request, "validation")]}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if response is not None:
            ok["content"] = {"application/json": {"schema": refs[(response, "serialization")]}}
        operation["responses"]["200"] = ok
        names = re.findall(r"{(\w+)}", path)
        if names:
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names
            ]
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "edge-runtime", "version": edge_runtime.__version__},
        "paths": paths,
        "components": {"schemas": schema.get("$defs", {})},
    }
