"""Tool calling for both API families: the prompt that teaches the tools and the grammar that guarantees calls
(splitting the model's text back into content and calls is `call_splitter`'s)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge_runtime.api.errors import ParameterError
from edge_runtime.api.generation import GrammarSpec
from edge_runtime.engine.chat_template import ChatTemplate
from edge_runtime.engine.tool_calls import (
    SystemMessageBehavior,
    ToolFormat,
    ToolSpec,
    choose_format,
    format_tool_calls,
    tool_system_prompt,
)
from edge_runtime.engine.types import GenerationRequest

if TYPE_CHECKING:
    from edge_runtime.grammar import GrammarCompiler


@dataclass(frozen=True)
class ToolUse:
    """The tools of one request and how they are offered. `choice`: "auto", "required" or a tool name."""

    tools: tuple[ToolSpec, ...]
    fmt: ToolFormat
    choice: str
    parallel: bool
    template_renders_tools: bool


@dataclass
class ChatGeneration:
    """A chat request ready for the engine, and the tools its output must be split by (None: no tools)."""

    request: GenerationRequest
    tool_use: ToolUse | None
    unenforced: tuple[str, ...] = ()
    """Schema keywords the decoding grammar leaves out (OpenAI `strict: false`), for the response to name."""


def plan_tool_use(
    tools: Sequence[ToolSpec],
    *,
    choice: str,
    requested_format: str | None,
    parallel: bool,
    template: ChatTemplate,
    architecture: str,
    model_id: str,
) -> ToolUse | None:
    """None when no tool may be called (no tools, or tool_choice none)."""
    if not tools or choice == "none":
        return None
    names = [tool.name for tool in tools]
    if len(set(names)) != len(names):
        raise ParameterError("tools", "tool names must be unique")
    if choice not in ("auto", "required") and choice not in names:
        raise ParameterError("tool_choice", f"tool '{choice}' is not among the request's tools")
    renders_tools = template.supports_tools
    fmt = choose_format(architecture, template.source if renders_tools else model_id, requested_format)
    return ToolUse(tuple(tools), fmt, choice, parallel, renders_tools)


def prompt_messages(
    messages: list[dict[str, Any]], use: ToolUse, behavior: SystemMessageBehavior = "append"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The conversation and the template's `tools` argument. A template that renders tools gets them as they
    are; otherwise our system prompt describes them and past calls are written in the call syntax."""
    if use.template_renders_tools:
        return messages, [tool.as_function() for tool in use.tools]
    system_text = None
    rest = messages
    if messages and messages[0]["role"] == "system":
        system_text, rest = str(messages[0]["content"]), messages[1:]
    system = tool_system_prompt(
        use.tools, use.fmt, behavior=behavior, system_text=system_text, tool_choice=use.choice
    )
    converted: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for message in rest:
        calls = message.get("tool_calls")
        if message["role"] == "assistant" and calls:
            written = format_tool_calls(
                [(c["function"]["name"], _arguments_dict(c["function"]["arguments"])) for c in calls], use.fmt
            )
            text = str(message.get("content") or "")
            converted.append({"role": "assistant", "content": f"{text}\n{written}" if text else written})
        else:
            converted.append(message)
    return converted, None


def _arguments_dict(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments)
    except (TypeError, json.JSONDecodeError):
        raise ParameterError(
            "messages", f"a past tool call's arguments are not a JSON object: {arguments!r}"
        ) from None
    if not isinstance(parsed, dict):
        raise ParameterError("messages", f"a past tool call's arguments are not a JSON object: {arguments!r}")
    return parsed


def tool_constraint(use: ToolUse, grammars: GrammarCompiler) -> GrammarSpec:
    """required / named: the output is only calls; auto: free text that may end in calls. Either way every
    call parses and its arguments validate against the tool's schema."""
    from edge_runtime.engine.tool_calls_grammar import call_grammar

    required = use.choice != "auto"
    only = use.choice if use.choice not in ("auto", "required") else None
    # Everything call_grammar reads: the key under which its grammar is cached.
    source = {
        "tools": [[tool.name, tool.parameters, tool.lenient] for tool in use.tools],
        "fmt": use.fmt,
        "required": required,
        "parallel": use.parallel,
        "only": only,
    }

    def write() -> tuple[str, tuple[str, ...]]:
        written = call_grammar(use.tools, use.fmt, required=required, parallel=use.parallel, only=only)
        return written.gbnf, written.unenforced

    grammar = grammars.written("tool-calls", source, write)
    return GrammarSpec(grammar, grammar.unenforced)

