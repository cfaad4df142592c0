"""What an upstream that claims structured output sent back, checked before the client sees it: a JSON Schema
with `jsonschema`, a GBNF grammar with our own grammar engine, a choice by membership."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from edge_runtime.upstreams.errors import UpstreamBadOutput
from edge_runtime.upstreams.shaping import Structured


@lru_cache(maxsize=64)
def _gbnf_automaton(text: str) -> Any:
    from edge_runtime.grammar import compile_gbnf

    return compile_gbnf(text).automaton


def check_output(text: str, structured: Structured) -> None:
    """Raise UpstreamBadOutput naming what is wrong with `text`."""
    if structured.kind == "choice":
        if text not in structured.choices:
            raise UpstreamBadOutput(f"the upstream's answer is not one of the {len(structured.choices)} choices")
        return
    if structured.kind == "grammar":
        from edge_runtime.grammar.automaton import DEAD

        automaton = _gbnf_automaton(structured.grammar or "")
        state = automaton.walk(automaton.initial, text.encode("utf-8"))
        if state == DEAD or not automaton.is_complete(state):
            raise UpstreamBadOutput("the upstream's answer does not match the grammar")
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as bad:
        raise UpstreamBadOutput(f"the upstream's answer is not JSON ({bad.msg} at {bad.pos})") from None
    if structured.kind == "json_object":
        if not isinstance(value, dict):
            raise UpstreamBadOutput("the upstream's answer is JSON but not an object")
        return
    import jsonschema

    validator_class = jsonschema.validators.validator_for(structured.schema, default=jsonschema.Draft202012Validator)
    mismatch = jsonschema.exceptions.best_match(validator_class(structured.schema).iter_errors(value))
    if mismatch is not None:
        where = "/" + "/".join(str(part) for part in mismatch.absolute_path)
        raise UpstreamBadOutput(
            f"the upstream's answer does not match the schema at {where}: {mismatch.message[:200]}"
        )
