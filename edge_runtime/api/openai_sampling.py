"""What an OpenAI request asks of the sampler, shared by completions and chat: its sampling parameters (with
vLLM's and llama-server's extras) and vLLM's guided decoding."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from edge_runtime.api import openai_types as ot
from edge_runtime.api.errors import ParameterError
from edge_runtime.api.generation import (
    GrammarSpec,
    parse_logit_bias,
    response_schema_grammar,
)
from edge_runtime.engine.types import (
    SamplingParams,
)

if TYPE_CHECKING:
    from edge_runtime.grammar import GrammarCompiler


def sampling_params(request: ot.CompletionRequest | ot.ChatCompletionRequest, n_vocab: int) -> SamplingParams:
    """OpenAI's defaults: temperature 1, top_p 1, no penalties; vLLM's top_k (-1 or 0: off), min_p and
    repetition_penalty (1: off) as vLLM and llama-server read them."""
    return SamplingParams(
        temperature=1.0 if request.temperature is None else request.temperature,
        top_k=max(request.top_k or 0, 0),
        top_p=1.0 if request.top_p is None else request.top_p,
        min_p=request.min_p or 0.0,
        repetition_penalty=1.0 if request.repetition_penalty is None else request.repetition_penalty,
        frequency_penalty=request.frequency_penalty or 0.0,
        presence_penalty=request.presence_penalty or 0.0,
        logit_bias=parse_logit_bias(request.logit_bias, n_vocab),
        seed=request.seed,
    )


def guided_constraint(
    guided_choice: list[str] | None,
    guided_json: dict[str, Any] | str | None,
    guided_grammar: str | None,
    grammars: GrammarCompiler,
) -> GrammarSpec | None:
    given = [
        name
        for name, value in (
            ("guided_choice", guided_choice),
            ("guided_json", guided_json),
            ("guided_grammar", guided_grammar),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ParameterError(given[1], "only one of guided_choice, guided_json, guided_grammar may be given")
    if guided_choice is not None:
        if not guided_choice or any(choice == "" for choice in guided_choice):
            raise ParameterError("guided_choice", "expected a non-empty list of non-empty strings")
        return GrammarSpec(grammars.choice(guided_choice))
    if guided_json is not None:
        schema = guided_json
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise ParameterError("guided_json", f"not valid JSON: {exc}") from None
        if not isinstance(schema, (dict, bool)):
            raise ParameterError("guided_json", "expected a JSON Schema object")
        return GrammarSpec(response_schema_grammar(grammars, schema))
    if guided_grammar is not None:
        return GrammarSpec(grammars.gbnf(guided_grammar))
    return None


def response_format_constraint(
    response_format: ot.ResponseFormat | None, grammars: GrammarCompiler
) -> GrammarSpec | None:
    if response_format is None or isinstance(response_format, ot.ResponseFormatText):
        return None
    if isinstance(response_format, ot.ResponseFormatJSONObject):
        return GrammarSpec(grammars.json_object(layout="canonical"))
    schema = response_format.json_schema.schema_
    if schema is None:
        return GrammarSpec(grammars.json_object(layout="canonical"))
    # OpenAI's default is non-strict: only strict true refuses a keyword no grammar can enforce.
    grammar = response_schema_grammar(grammars, schema, lenient=response_format.json_schema.strict is not True)
    return GrammarSpec(grammar, tuple(f"response_format: {keyword}" for keyword in grammar.unenforced))
