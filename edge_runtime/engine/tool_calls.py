"""Tool calling without HTTP: which call syntax a model gets, the system prompt that teaches it, and parsing
the model's text back into calls.

Call syntaxes (`fmt`):
- `json` (Llama 3.1, as Llama Stack prompts it): `{"type": "function", "name": "f", "parameters": {...}}`,
  one object per call, several calls one per line.
- `function_tag` (Llama 3.1 alternative): `<function=f>{...}</function>`, several calls one per line.
- `python_list` (Llama 3.2 and later): `[f(a=1, b="x"), g()]`, keyword arguments with literal values.
- `generic` (any other model; our own): one block per call, several calls one per line:
      <tool_call>
      {"name": "f", "arguments": {...}}
      </tool_call>
  Tool results go back to the model as `<tool_response>...</tool_response>` (the built-in chat templates write
  both forms). The same shape is what Hermes- and Qwen-style templates teach their models.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_runtime.errors import BadRequest

ToolFormat = Literal["json", "function_tag", "python_list", "generic"]
TOOL_FORMATS: tuple[ToolFormat, ...] = ("json", "function_tag", "python_list", "generic")
SystemMessageBehavior = Literal["append", "replace"]

CALL_SEPARATOR = "\n"
"""Between two calls of one turn, in every format but python_list (whose calls share one list)."""
MAX_CALLS_PER_TURN = 8
"""Parallel calls one turn may make; the call grammar stops there."""

_FUNCTION_DESCRIPTION_SLOT = re.compile(r"\{\{\s*function_description\s*\}\}")

# Llama Stack's `param_type` names (Python's and JSON Schema's spellings) and the JSON Schema type of each.
_PARAM_TYPES: dict[str, str] = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "array": "array",
    "dict": "object",
    "object": "object",
}


@dataclass(frozen=True)
class ToolSpec:
    """One tool the model may call; `parameters` is a JSON Schema for the arguments object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    lenient: bool = False
    """Keywords of `parameters` a grammar cannot enforce are left out and reported, not refused (OpenAI's
    `strict: false`)."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise BadRequest("a tool needs a non-empty name")
        if not isinstance(self.parameters, dict):
            raise BadRequest(f"tool '{self.name}': parameters must be a JSON Schema object")

    @classmethod
    def from_param_definitions(
        cls, name: str, description: str | None, parameters: Mapping[str, Mapping[str, Any]] | None
    ) -> ToolSpec:
        """From Llama Stack's `{name: {"param_type", "description"?, "required"=True, "default"?}}`.

        A `param_type` we do not know (e.g. `datetime`) allows any JSON value, with the type named in the
        description so the model still sees it.
        """
        properties: dict[str, Any] = {}
        required: list[str] = []
        for param_name, definition in (parameters or {}).items():
            param_type = str(definition.get("param_type", ""))
            known = _PARAM_TYPES.get(param_type.lower())
            schema: dict[str, Any] = {"type": known} if known else {}
            text = str(definition.get("description") or "")
            if not known and param_type:
                text = f"{text} ({param_type})".strip()
            if text:
                schema["description"] = text
            if "default" in definition and definition["default"] is not None:
                schema["default"] = definition["default"]
            properties[param_name] = schema
            if definition.get("required", True):
                required.append(param_name)
        schema_object: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema_object["required"] = required
        return cls(name=name, description=description or "", parameters=schema_object)

    def as_function(self) -> dict[str, Any]:
        """The OpenAI / Hugging Face tool shape: `{"type": "function", "function": {...}}`."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


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


def checked_format(fmt: str) -> ToolFormat:
    if fmt not in TOOL_FORMATS:
        raise BadRequest(f"unknown tool prompt format '{fmt}' (known: {', '.join(TOOL_FORMATS)})")
    return fmt  # type: ignore[return-value]  # checked against TOOL_FORMATS just above


# ---------------------------------------------------------------------------------------------- choosing


# Versions as model names write them: "Llama-3.1-8B", "llama3_2", "Llama-3-2-1b"; but "Llama-3-8B" is 3.0.
_LLAMA3_1 = re.compile(r"llama[-_ ]?3(?:[._]1|-1(?!\d*b))(?!\d)", re.IGNORECASE)
_LLAMA3_LATER = re.compile(r"llama[-_ ]?(?:3(?:[._][2-9]|-[2-9](?!\d*b))|4(?!\d*b))(?!\d)", re.IGNORECASE)


def _looks_like_template(text: str) -> bool:
    return "{%" in text or "{{" in text


def _template_call_format(template: str) -> ToolFormat:
    """The call syntax a tool-taking chat template teaches, judged by the markers it writes."""
    if "<function=" in template:
        return "function_tag"
    if "<|start_header_id|>" in template:
        return "json"
    return "generic"


def choose_format(architecture: str, model_name_or_template: str, requested: str | None) -> ToolFormat:
    """The call syntax for a model: the requested one, else the chat template's own when it takes tools,
    else Llama Stack's for Llama 3 (json for 3.1, python_list for 3.2 and later), else `generic`.

    Pass the template text when the model's chat template takes tools (it is then given the tools as they
    are, see `ChatTemplate.supports_tools`); otherwise pass the model's name.
    """
    if requested is not None:
        return checked_format(requested)
    text = model_name_or_template
    if _looks_like_template(text):
        if re.search(r"\btools\b", text):
            return _template_call_format(text)
        if "<|start_header_id|>" in text:
            return "json"
        return "generic"
    if _LLAMA3_LATER.search(text):
        return "python_list"
    if _LLAMA3_1.search(text) or (
        architecture.lower() == "llama" and re.search(r"llama[-_ ]?3", text, re.IGNORECASE)
    ):
        return "json"
    return "generic"


def call_trigger(fmt: str) -> str:
    """The text every call in `fmt` starts with: in `auto` mode the output is free until this appears."""
    return {"json": '{"', "function_tag": "<function=", "python_list": "[", "generic": "<tool_call>"}[
        checked_format(fmt)
    ]


# ---------------------------------------------------------------------------------------------- prompting


def _tool_json_lines(tools: Sequence[ToolSpec]) -> str:
    return "\n".join(json.dumps(t.as_function(), ensure_ascii=False) for t in tools)


def _function_description(tools: Sequence[ToolSpec], fmt: ToolFormat) -> str:
    """The part of the prompt that lists the tools and shows the call syntax."""
    if fmt == "json":
        return (
            "Answer the user's question with the help of the following functions when they are useful.\n"
            "If none of them fits, say so and answer without them.\n"
            "The functions, in JSON format:\n"
            f"{_tool_json_lines(tools)}\n\n"
            "To call a function, reply with only a JSON object of this form, one line per call:\n"
            '{"type": "function", "name": "<function name>", "parameters": {"<argument>": <value>, ...}}'
        )
    if fmt == "function_tag":
        listing = "\n\n".join(
            f"Use the function '{t.name}' to: {t.description}\n"
            + json.dumps(
                {"name": t.name, "description": t.description, "parameters": t.parameters}, ensure_ascii=False
            )
            for t in tools
        )
        return (
            "You can use the following functions:\n\n"
            f"{listing}\n\n"
            "To call a function, reply only in this form, with no text before or after it:\n"
            '<function=function_name>{"argument_name": "argument_value"}</function>\n\n'
            "Remember:\n"
            "- a call starts with <function= and ends with </function>, all on one line\n"
            "- give every required argument\n"
            "- put each call on its own line"
        )
    if fmt == "python_list":
        listing = json.dumps(
            [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools],
            ensure_ascii=False,
            indent=2,
        )
        return (
            "You are an expert at composing function calls. "
            "You are given a question and a set of functions.\n"
            "Use a function only if the question needs it; you may need one call, several, or none.\n\n"
            "To call functions, reply with only a Python list of calls with keyword arguments:\n"
            "[function_name1(argument1=value1, argument2=value2), function_name2(argument=value)]\n"
            "Write nothing else in a reply that calls functions. Booleans are True or False.\n\n"
            "The functions you can call, in JSON format:\n\n"
            f"{listing}"
        )
    return (
        "# Tools\n\n"
        "You may call one or more of the functions described in JSON Schema inside <tools></tools>:\n"
        f"<tools>\n{_tool_json_lines(tools)}\n</tools>\n\n"
        "To call a function, write a JSON object with its name and arguments inside <tool_call></tool_call>, "
        "one block per call:\n"
        '<tool_call>\n{"name": "<function name>", "arguments": {"<argument>": <value>}}\n</tool_call>\n'
        "The results come back inside <tool_response></tool_response>."
    )


def _tool_choice_instruction(tool_choice: str, tools: Sequence[ToolSpec]) -> str:
    if tool_choice == "auto":
        return ""
    if tool_choice == "required":
        return "You MUST call one or more of the functions above to answer the user."
    if tool_choice == "none":
        raise BadRequest("tool_choice 'none' takes no tool prompt: leave the tools out")
    if tool_choice not in {t.name for t in tools}:
        raise BadRequest(f"tool_choice names '{tool_choice}', which is not among the tools")
    return f"You MUST call the function `{tool_choice}` to answer the user."


def tool_system_prompt(
    tools: Sequence[ToolSpec],
    fmt: str,
    *,
    behavior: SystemMessageBehavior = "append",
    system_text: str | None = None,
    tool_choice: str = "auto",
) -> str:
    """The system turn that teaches the model the tools and the call syntax.

    append: our tool instructions, then the conversation's own system text.
    replace: the system text replaces our instructions; `{{ function_description }}` in it becomes the tool
    listing (when it has no such slot the listing follows it, so the model still sees the tools).
    `tool_choice` "required" or a tool name adds an instruction to call (Llama Stack does the same).
    """
    if not tools:
        raise BadRequest("a tool prompt needs at least one tool")
    if behavior not in ("append", "replace"):
        raise BadRequest(f"unknown system_message_behavior '{behavior}' (append or replace)")
    description = _function_description(tools, checked_format(fmt))
    if behavior == "replace" and system_text:
        if _FUNCTION_DESCRIPTION_SLOT.search(system_text):
            prompt = _FUNCTION_DESCRIPTION_SLOT.sub(lambda _: description, system_text)
        else:
            prompt = f"{system_text}\n\n{description}"
    elif system_text:
        prompt = f"{description}\n\n{system_text}"
    else:
        prompt = description
    instruction = _tool_choice_instruction(tool_choice, tools)
    return f"{prompt}\n\n{instruction}" if instruction else prompt


# ---------------------------------------------------------------------------------------------- writing


def _python_literal(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{_python_literal(str(k))}: {_python_literal(v)}" for k, v in value.items())
            + "}"
        )
    raise BadRequest(f"a tool argument of type {type(value).__name__} cannot be written as a Python literal")


def format_tool_calls(calls: Sequence[tuple[str, Mapping[str, Any]]], fmt: str) -> str:
    """Writes (name, arguments) calls as the model would, e.g. for assistant turns in the history."""
    fmt = checked_format(fmt)
    if fmt == "python_list":
        items = (
            f"{name}({', '.join(f'{k}={_python_literal(v)}' for k, v in args.items())})"
            for name, args in calls
        )
        return "[" + ", ".join(items) + "]"
    written = []
    for name, args in calls:
        arguments = json.dumps(dict(args), ensure_ascii=False)
        if fmt == "json":
            written.append(
                f'{{"type": "function", "name": {json.dumps(name, ensure_ascii=False)}, '
                f'"parameters": {arguments}}}'
            )
        elif fmt == "function_tag":
            written.append(f"<function={name}>{arguments}</function>")
        else:
            written.append(
                f'<tool_call>\n{{"name": {json.dumps(name, ensure_ascii=False)}, '
                f'"arguments": {arguments}}}\n</tool_call>'
            )
    return CALL_SEPARATOR.join(written)


# ---------------------------------------------------------------------------------------------- parsing


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
