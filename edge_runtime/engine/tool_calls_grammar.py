"""GBNF grammars whose sentences are exactly well-formed tool calls with schema-valid arguments.

Each tool's argument schema is compiled by the grammar engine's JSON Schema compiler; its rules are renamed
with a per-tool prefix so that several tools live in one grammar. The fixed parts of a call are written in
the one canonical form `tool_calls.format_tool_calls` writes, so the decoder can jump over them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from edge_runtime.engine.tool_calls import (
    CALL_SEPARATOR,
    MAX_CALLS_PER_TURN,
    ToolFormat,
    ToolSpec,
    call_trigger,
    checked_format,
)
from edge_runtime.errors import BadRequest
from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.gbnf_text import gbnf_class, gbnf_literal
from edge_runtime.grammar.json_schema import json_schema_to_gbnf


@dataclass(frozen=True)
class CallGrammar:
    """A call grammar. The schema compiler runs strict unless a tool is lenient: a keyword it cannot enforce
    is refused, so every sentence's arguments validate; a lenient tool's are listed in `unenforced`
    ("tool 'name' parameters: keyword at pointer")."""

    gbnf: str
    unenforced: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------ GBNF writing


def _char_class(chars: Sequence[str], *, negated: bool = False) -> str:
    """A GBNF character class of `chars` (or of every other character when negated)."""
    return gbnf_class([(ord(c), ord(c)) for c in sorted(set(chars))], negated=negated)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|#[^\n]*|[a-zA-Z0-9_-]+|\s+|.', re.DOTALL)
_RULE_DEFINITION = re.compile(r"^\s*([a-zA-Z0-9_-]+)\s*::=", re.MULTILINE)


def prefixed_rules(gbnf: str, prefix: str) -> str:
    """The same grammar with every rule it defines renamed `prefix + name` (definitions and references;
    literals, character classes and comments are left alone)."""
    defined = set(_RULE_DEFINITION.findall(gbnf))
    return "".join(prefix + token if token in defined else token for token in _TOKEN.findall(gbnf))


_PYTHON_SPELLINGS = {'"true"': '"True"', '"false"': '"False"', '"null"': '"None"'}


def python_spellings(gbnf: str) -> str:
    """A JSON value grammar that writes true/false/null as Python does (True/False/None), so python_list
    calls come out as Llama 3.2 writes them. Only whole literal tokens change: the JSON string "true" is
    another literal and stays."""
    return "".join(_PYTHON_SPELLINGS.get(token, token) for token in _TOKEN.findall(gbnf))


def _compiled_schema(schema: Any, prefix: str, where: str, tool: ToolSpec, unenforced: list[str]) -> str:
    """The schema's grammar with rules renamed under `prefix` (its start rule is `prefix + "root"`); what a
    lenient tool's schema leaves unenforced is added to `unenforced`."""
    try:
        # Closed objects: a tool's arguments get only the parameters it declares (no invented keys), in the
        # canonical layout, as response formats (api/generation.py).
        gbnf, left_out = json_schema_to_gbnf(schema, lenient=tool.lenient, closed_objects=True, layout="canonical")
    except GrammarError as exc:
        raise GrammarError(f"{where}: {exc.reason}") from exc
    unenforced.extend(f"{where}: {keyword}" for keyword in left_out)
    return prefixed_rules(gbnf, prefix)


# ------------------------------------------------------------------------------------------ free text


def _text_without(trigger: str, name: str) -> list[str]:
    """Rules `name-<q>` for any text that does not contain `trigger`; q is how much of the trigger the text
    ends with (a Knuth-Morris-Pratt automaton written as right-recursive rules)."""
    failure = [0] * len(trigger)
    k = 0
    for i in range(1, len(trigger)):
        while k and trigger[i] != trigger[k]:
            k = failure[k - 1]
        if trigger[i] == trigger[k]:
            k += 1
        failure[i] = k

    def step(state: int, char: str) -> int:
        while state and trigger[state] != char:
            state = failure[state - 1]
        return state + 1 if trigger[state] == char else state

    alphabet = sorted(set(trigger))
    rules = []
    for state in range(len(trigger)):
        targets: dict[int, list[str]] = {}
        for char in alphabet:
            targets.setdefault(step(state, char), []).append(char)
        leaving_zero = [c for target, chars in targets.items() if target != 0 for c in chars]
        alternatives = [f"{_char_class(leaving_zero, negated=True)} {name}-0"]
        alternatives += [
            f"{_char_class(chars)} {name}-{target}"
            for target, chars in sorted(targets.items())
            if 0 < target < len(trigger)
        ]
        rules.append(f"{name}-{state} ::= ( {' | '.join(alternatives)} )?")
    return rules


# ------------------------------------------------------------------------------------------ calls


_PYTHON_NAME = re.compile(r"[A-Za-z_][\w.]*\Z")
_TOP_LEVEL_KWARGS_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "description",
        "title",
        "$defs",
        "definitions",
        "$schema",
        "$id",
        "$comment",
        "default",
        "examples",
    }
)


def _kwargs_rules(tool: ToolSpec, prefix: str, unenforced: list[str]) -> list[str]:
    """Rules for python_list keyword arguments `a=1, b="x"`: each property's value is compiled on its own,
    properties in schema order, optional ones may be left out."""
    schema = tool.parameters
    unsupported = sorted(set(schema) - _TOP_LEVEL_KWARGS_KEYWORDS)
    if unsupported or schema.get("type", "object") != "object":
        what = f"keyword {unsupported[0]}" if unsupported else f"type {schema.get('type')!r}"
        raise BadRequest(
            f"tool '{tool.name}': python_list calls take keyword arguments, "
            "so the parameters must be an object "
            f"schema with properties; {what} at its top is not supported (use another tool format)"
        )
    properties: dict[str, Any] = dict(schema.get("properties") or {})
    required = list(schema.get("required") or [])
    for name in required:
        properties.setdefault(name, True)
    shared = {key: schema[key] for key in ("$defs", "definitions") if key in schema}
    rules: list[str] = []
    kwargs: list[tuple[str, bool]] = []
    for index, (name, subschema) in enumerate(properties.items()):
        if not _PYTHON_NAME.match(name) or "." in name:
            raise BadRequest(f"tool '{tool.name}': '{name}' cannot be a Python keyword argument")
        if subschema is False:
            if name in required:
                raise BadRequest(f"tool '{tool.name}': required argument '{name}' has the schema false")
            continue
        value_schema = {} if subschema is True else dict(subschema)
        for key, defs in shared.items():
            value_schema[key] = {**defs, **value_schema.get(key, {})}
        value_prefix = f"{prefix}arg{index}-"
        gbnf = _compiled_schema(value_schema, value_prefix, f"tool '{tool.name}' argument '{name}'", tool, unenforced)
        rules.append(python_spellings(gbnf))
        kwargs.append((f"{gbnf_literal(name + '=')} {value_prefix}root", name in required))
    # after-k: arguments k.. when one is already written (each needs ", "); first-k: when none is yet.
    count = len(kwargs)
    rules.append(f'{prefix}after-{count} ::= ""')
    rules.append(f'{prefix}first-{count} ::= ""')
    for k in range(count - 1, -1, -1):
        value, is_required = kwargs[k]
        after = f'", " {value} {prefix}after-{k + 1}'
        first = f"{value} {prefix}after-{k + 1}"
        rules.append(f"{prefix}after-{k} ::= {after}" + ("" if is_required else f" | {prefix}after-{k + 1}"))
        rules.append(f"{prefix}first-{k} ::= {first}" + ("" if is_required else f" | {prefix}first-{k + 1}"))
    rules.append(f"{prefix}kwargs ::= {prefix}first-0")
    return rules


def _call_rules(tool: ToolSpec, fmt: ToolFormat, prefix: str, unenforced: list[str]) -> list[str]:
    """Rules for one call of `tool`, starting at `prefix + "call"`."""
    name_json = json.dumps(tool.name, ensure_ascii=False)
    if fmt == "python_list":
        if not _PYTHON_NAME.match(tool.name):
            raise BadRequest(f"tool '{tool.name}': python_list needs a Python name for the function")
        call = f'{prefix}call ::= {gbnf_literal(tool.name + "(")} {prefix}kwargs ")"'
        return [*_kwargs_rules(tool, prefix, unenforced), call]
    arguments = f"{prefix}args-"
    gbnf = _compiled_schema(tool.parameters, arguments, f"tool '{tool.name}' parameters", tool, unenforced)
    if fmt == "json":
        opening, closing = '{"type": "function", "name": ' + name_json + ', "parameters": ', "}"
    elif fmt == "function_tag":
        if re.search(r"[>\s]", tool.name):
            raise BadRequest(f"tool '{tool.name}': function_tag names cannot hold '>' or spaces")
        opening, closing = f"<function={tool.name}>", "</function>"
    else:
        opening, closing = '<tool_call>\n{"name": ' + name_json + ', "arguments": ', "}\n</tool_call>"
    body = f"{gbnf_literal(opening)} {arguments}root {gbnf_literal(closing)}"
    return [gbnf, f"{prefix}call ::= {body}"]


def _selected(tools: Sequence[ToolSpec], only: str | None) -> list[ToolSpec]:
    if not tools:
        raise BadRequest("a call grammar needs at least one tool")
    if len({t.name for t in tools}) != len(tools):
        raise BadRequest("two tools have the same name")
    if only is None:
        return list(tools)
    chosen = [t for t in tools if t.name == only]
    if not chosen:
        raise BadRequest(f"tool_choice names '{only}', which is not among the tools")
    return chosen


def _root(fmt: ToolFormat, *, required: bool, parallel: bool) -> Iterator[str]:
    """At most MAX_CALLS_PER_TURN calls, and the turn may end after any of them: a separator is the likeliest
    token after a call, and where it forced another whole call models called one tool 96 times in a turn."""
    separator = '", "' if fmt == "python_list" else gbnf_literal(CALL_SEPARATOR)
    more = f" ( {separator} call ){{0,{MAX_CALLS_PER_TURN - 1}}}" if parallel else ""
    if fmt == "python_list":
        yield f'calls ::= "[" call{more} "]"'
    else:
        yield f"calls ::= call{more} {separator}?"
    if required:
        yield "root ::= calls"
    else:
        yield "root ::= text-0 calls?"
        yield from _text_without(call_trigger(fmt), "text")


def call_grammar(
    tools: Sequence[ToolSpec], fmt: str, *, required: bool, parallel: bool, only: str | None = None
) -> CallGrammar:
    """The grammar of a turn that calls tools in `fmt`.

    required: the turn is only calls (one, or several with `parallel`, one per line or in one python list).
    Otherwise the turn is free text that never contains the call trigger, then optionally the calls.
    only: restrict to the tool of that name (a named tool_choice).
    """
    fmt = checked_format(fmt)
    chosen = _selected(tools, only)
    rules: list[str] = list(_root(fmt, required=required, parallel=parallel))
    alternatives: list[str] = []
    unenforced: list[str] = []
    for index, tool in enumerate(chosen):
        prefix = f"tool{index}-"
        rules.extend(_call_rules(tool, fmt, prefix, unenforced))
        alternatives.append(f"{prefix}call")
    rules.insert(0, f"call ::= {' | '.join(alternatives)}")
    return CallGrammar(gbnf="\n".join(rule.strip() for rule in rules) + "\n", unenforced=tuple(unenforced))


def call_grammar_gbnf(tools: Sequence[ToolSpec], fmt: str, *, required: bool, parallel: bool) -> str:
    """The GBNF text of `call_grammar` (which also takes `only`, for a named tool choice)."""
    return call_grammar(tools, fmt, required=required, parallel=parallel).gbnf
