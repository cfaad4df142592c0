"""Tool calling without HTTP: which call syntax a model gets, the system prompt that teaches it, and how calls
are written (tool_call_parsing reads them back).

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

import json
import re
from collections.abc import Mapping, Sequence
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
