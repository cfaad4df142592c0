"""Parsing a model's text back into tool calls, in each call syntax `tool_calls` describes: the calls to known
tools are cut out of the content, in order; this never raises on model output."""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from edge_runtime.engine.tool_calls import ToolSpec, checked_format


@dataclass(frozen=True)
class ParsedToolCall:
    """A call found in model output; `error` says why `arguments` could not be read (then it is None)."""

    call_id: str
    name: str
    arguments: dict[str, Any] | None
    raw: str
    error: str | None = None


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class _Found:
    """A span of the text that holds calls (to known tools), to be cut out of the content."""

    start: int
    end: int
    calls: list[ParsedToolCall]


_JSON_DECODER = json.JSONDecoder(strict=False)
"""Lenient about raw control characters (a newline typed inside a string): a model's intent is clear."""


def _arguments_object(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(value, str):
        try:
            value = _JSON_DECODER.decode(value)
        except json.JSONDecodeError as exc:
            return None, f"arguments are not valid JSON: {exc.msg}"
    if not isinstance(value, dict):
        return None, "arguments are not a JSON object"
    return value, None


def _arguments_of(call: dict[str, Any], keys: tuple[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    """The arguments under the format's own key, or under the other format's (models mix them up)."""
    for key in keys:
        if key in call:
            return _arguments_object(call[key])
    return None, f"call has no {keys[0]}"


_JSON_CALL_OPENING = re.compile(r'\{\s*(?:"type"\s*:\s*"function"\s*,\s*)?"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _opening_name(opening: re.Match[str] | None) -> str | None:
    if opening is None:
        return None
    try:
        name = json.loads(f'"{opening.group(1)}"')
    except json.JSONDecodeError:
        return None
    return name if isinstance(name, str) else None


def _scan_json(text: str, names: set[str]) -> Iterator[_Found]:
    openings = list(_JSON_CALL_OPENING.finditer(text))
    consumed = 0
    for index, opening in enumerate(openings):
        start = opening.start()
        limit = openings[index + 1].start() if index + 1 < len(openings) else len(text)
        name = _opening_name(opening)
        if start < consumed or name not in names:
            continue
        try:
            value, end = _JSON_DECODER.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            raw = text[start:limit].strip()
            consumed = start + len(text[start:limit].rstrip())
            yield _Found(
                start,
                consumed,
                [ParsedToolCall(new_call_id(), name, None, raw, f"call is not valid JSON: {exc.msg}")],
            )
            continue
        consumed = end
        raw = text[start:end]
        arguments, error = _arguments_of(value, ("parameters", "arguments"))
        yield _Found(start, end, [ParsedToolCall(new_call_id(), name, arguments, raw, error)])


_FUNCTION_TAG = re.compile(r"<function=([^>\s]+)>(.*?)(?:</function>|$)", re.DOTALL)


def _scan_function_tag(text: str, names: set[str]) -> Iterator[_Found]:
    for match in _FUNCTION_TAG.finditer(text):
        name, body = match.group(1), match.group(2).strip()
        if name not in names:
            continue
        arguments, error = _arguments_object(body or "{}")
        yield _Found(
            match.start(),
            match.end(),
            [ParsedToolCall(new_call_id(), name, arguments, match.group(0).strip(), error)],
        )


_TOOL_CALL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)


def _scan_generic(text: str, names: set[str]) -> Iterator[_Found]:
    for match in _TOOL_CALL_BLOCK.finditer(text):
        body, raw = match.group(1).strip(), match.group(0).strip()
        try:
            value = _JSON_DECODER.decode(body)
        except json.JSONDecodeError as exc:
            name = _opening_name(_JSON_CALL_OPENING.match(body))
            if name is not None and name in names:
                yield _Found(
                    match.start(),
                    match.end(),
                    [ParsedToolCall(new_call_id(), name, None, raw, f"call is not valid JSON: {exc.msg}")],
                )
            continue
        if not isinstance(value, dict) or value.get("name") not in names:
            continue
        arguments, error = _arguments_of(value, ("arguments", "parameters"))
        yield _Found(
            match.start(), match.end(), [ParsedToolCall(new_call_id(), value["name"], arguments, raw, error)]
        )


class _NotLiteral(ValueError):
    pass


_BARE_LITERALS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}


def _literal(node: ast.expr) -> Any:
    """A Python literal (JSON's true/false/null accepted too); anything that would run code is refused."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name) and node.id in _BARE_LITERALS:
        return _BARE_LITERALS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _literal(node.operand)
        if isinstance(operand, (int, float)) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        keys = [_literal(key) for key in node.keys if key is not None]
        if all(isinstance(key, str) for key in keys):
            return {key: _literal(value) for key, value in zip(keys, node.values)}
    raise _NotLiteral(ast.unparse(node))


def _python_call(node: ast.expr, raw: str) -> ParsedToolCall | None:
    """One element of a python_list; None when it is not a call by name at all."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Name, ast.Attribute)):
        return None
    name = ast.unparse(node.func)
    text = ast.get_source_segment(raw, node) or raw
    if node.args:
        return ParsedToolCall(new_call_id(), name, None, text, "positional arguments are not allowed")
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return ParsedToolCall(new_call_id(), name, None, text, "**arguments are not allowed")
        try:
            arguments[keyword.arg] = _literal(keyword.value)
        except _NotLiteral as exc:
            return ParsedToolCall(
                new_call_id(), name, None, text, f"argument '{keyword.arg}' is not a literal: {exc}"
            )
    return ParsedToolCall(new_call_id(), name, arguments, text)


_PYTHON_LIST_OPENING = re.compile(r"\[\s*([A-Za-z_][\w.]*)\s*\(")


def _first_expression_end(text: str, start: int) -> int | None:
    """The end of the shortest text from `start` to a `]` that is a whole Python expression."""
    for end in (i + 1 for i in range(start, len(text)) if text[i] == "]"):
        try:
            ast.parse(text[start:end], mode="eval")
        except (SyntaxError, ValueError):
            continue
        return end
    return None


def _scan_python_list(text: str, names: set[str]) -> Iterator[_Found]:
    position = 0
    while match := _PYTHON_LIST_OPENING.search(text, position):
        start = match.start()
        end = _first_expression_end(text, start)
        if end is None:
            if match.group(1) in names:
                yield _Found(
                    start,
                    len(text),
                    [
                        ParsedToolCall(
                            new_call_id(),
                            match.group(1),
                            None,
                            text[start:].strip(),
                            "call list is not valid Python",
                        )
                    ],
                )
                return
            position = match.end()
            continue
        candidate = text[start:end]
        tree = ast.parse(candidate, mode="eval")
        if isinstance(tree.body, ast.List):
            calls = [_python_call(element, candidate) for element in tree.body.elts]
            known = [c for c in calls if c is not None and c.name in names]
            if known and len(known) == len(calls):
                yield _Found(start, end, known)
                position = end
                continue
        position = match.end()


_LLAMA_PYTHON_TAG = "<|python_tag|>"
"""Llama 3 may open a call with this special token; when it reaches us as text it is not content."""

_SCANNERS = {
    "json": _scan_json,
    "function_tag": _scan_function_tag,
    "python_list": _scan_python_list,
    "generic": _scan_generic,
}


def parse_tool_calls(text: str, fmt: str, tools: Sequence[ToolSpec]) -> tuple[str, list[ParsedToolCall]]:
    """Split model output into its remaining content and the calls in it, in order.

    A call-shaped span whose name is not among `tools` is not a call: it stays in the content. A call with a
    known name whose arguments cannot be read is a ParsedToolCall with `error` set; this never raises on
    model output.

    A call identical to an earlier one of the turn (same name and arguments) ends the turn: a small model
    that repeats itself would otherwise fill the turn with copies.
    """
    names = {t.name for t in tools}
    text = text.replace(_LLAMA_PYTHON_TAG, "")
    content: list[str] = []
    calls: list[ParsedToolCall] = []
    seen: set[str] = set()
    position = 0
    for found in _SCANNERS[checked_format(fmt)](text, names):
        content.append(text[position : found.start])
        position = found.end
        for call in found.calls:
            key = call.name + "\0" + (json.dumps(call.arguments, sort_keys=True) if call.error is None else call.raw)
            if key in seen:
                return "".join(content).strip(), calls
            seen.add(key)
            calls.append(call)
    content.append(text[position:])
    return "".join(content).strip(), calls
