"""A client's OpenAI-shaped request rewritten for one upstream's dialect: parameters it does not take are a 400
naming them (never dropped), structured output is put where the dialect reads it, or refused when it cannot
enforce it, and the model is the upstream's own name for it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from edge_runtime.api.errors import ParameterError
from edge_runtime.grammar.gbnf_text import gbnf_literal
from edge_runtime.upstreams.providers import STRUCTURED_PARAMS, Dialect, StructuredKind

Endpoint = Literal["chat", "completions", "embeddings"]


@dataclass(frozen=True)
class Structured:
    """What the request asked its output to be, whichever parameter asked it (`param`, for errors)."""

    kind: StructuredKind
    param: str
    schema: dict[str, Any] | bool | None = None
    strict: bool = False
    grammar: str | None = None
    choices: tuple[str, ...] = ()
    name: str = "output"


def requested_structure(raw: dict[str, Any]) -> Structured | None:
    """The one structured-output request of a body (two at once is a 400, as for local models)."""
    asked = [key for key in ("response_format", "guided_json", "guided_grammar", "guided_choice") if raw.get(key)]
    asked = [key for key in asked if key != "response_format" or raw[key].get("type") != "text"]
    if len(asked) > 1:
        raise ParameterError(asked[1], f"cannot be combined with {asked[0]}")
    if not asked:
        return None
    key = asked[0]
    value = raw[key]
    if key == "guided_json":
        schema = json.loads(value) if isinstance(value, str) else value
        return Structured("json_schema", key, schema=schema)
    if key == "guided_grammar":
        return Structured("grammar", key, grammar=value)
    if key == "guided_choice":
        return Structured("choice", key, choices=tuple(value))
    if value.get("type") == "json_object":
        return Structured("json_object", "response_format")
    spec = value.get("json_schema") or {}
    return Structured(
        "json_schema", "response_format.json_schema", schema=spec.get("schema") or {},
        strict=bool(spec.get("strict")), name=spec.get("name") or "output",
    )


def _choice_grammar(choices: tuple[str, ...]) -> str:
    return "root ::= " + " | ".join(gbnf_literal(choice) for choice in choices)


def _structured_fields(structured: Structured, dialect: Dialect, endpoint: Endpoint) -> dict[str, Any]:
    """The dialect's own parameters for `structured`; a 400 naming the client's parameter when it has none."""
    if structured.kind not in dialect.structured:
        what = {"grammar": "a GBNF grammar", "choice": "a choice list", "json_schema": "a JSON Schema",
                "json_object": "JSON mode"}[structured.kind]
        raise ParameterError(
            structured.param, f"the upstream's dialect ({dialect.name}) cannot enforce {what}; nothing was sent"
        )
    style = dialect.schema_style
    schema_format = {
        "type": "json_schema",
        "json_schema": {"name": structured.name, "schema": structured.schema, "strict": structured.strict},
    }
    if structured.kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if dialect.grammar_format and structured.kind in ("grammar", "choice"):
        grammar = structured.grammar if structured.kind == "grammar" else _choice_grammar(structured.choices)
        return {"response_format": {"type": "grammar", "grammar": grammar}}
    if style == "structured_outputs":
        key = {"json_schema": "json", "grammar": "grammar", "choice": "choice"}[structured.kind]
        value: Any = {"json_schema": structured.schema, "grammar": structured.grammar,
                      "choice": list(structured.choices)}[structured.kind]
        return {"structured_outputs": {key: value}}
    if style == "guided":
        key = {"json_schema": "guided_json", "grammar": "guided_grammar", "choice": "guided_choice"}[structured.kind]
        return {key: {"json_schema": structured.schema, "grammar": structured.grammar,
                      "choice": list(structured.choices)}[structured.kind]}
    if style == "llama_server":
        if structured.kind == "json_schema" and endpoint == "chat":
            return {"response_format": {"type": "json_object", "schema": structured.schema}}
        if structured.kind == "json_schema":
            return {"json_schema": structured.schema}
        grammar = structured.grammar if structured.kind == "grammar" else _choice_grammar(structured.choices)
        return {"grammar": grammar}
    return {"response_format": schema_format}


def shape_request(
    raw: dict[str, Any], dialect: Dialect, endpoint: Endpoint, provider_model: str
) -> tuple[dict[str, Any], Structured | None]:
    """The body to send and the structure its output must have (checked on the way back)."""
    if endpoint == "completions" and not dialect.completions:
        raise ParameterError("model", f"the upstream's dialect ({dialect.name}) has no /completions; use chat")
    if endpoint == "embeddings" and not dialect.embeddings:
        raise ParameterError("model", f"the upstream's dialect ({dialect.name}) has no /embeddings")
    structured = requested_structure(raw) if endpoint != "embeddings" else None
    if dialect.passthrough:
        return {**raw, "model": provider_model}, structured
    refused = sorted(key for key in raw if key not in dialect.accepts and key not in STRUCTURED_PARAMS)
    if refused:
        names = ", ".join(f"'{key}'" for key in refused)
        raise ParameterError(
            refused[0], f"the upstream's dialect ({dialect.name}) does not take {names}; nothing was sent"
        )
    body = {key: value for key, value in raw.items() if key not in STRUCTURED_PARAMS}
    plain = raw.get("response_format")
    if isinstance(plain, dict) and plain.get("type") == "text" and "response_format" in dialect.accepts:
        body["response_format"] = plain  # plain text, the default: said explicitly where the dialect can hear it
    for ours, theirs in dialect.renames:
        if ours in body:
            body[theirs] = body.pop(ours)
    if structured is not None:
        body.update(_structured_fields(structured, dialect, endpoint))
    body["model"] = provider_model
    return body, structured
