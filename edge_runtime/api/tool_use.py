"""Tool calling for both API families: the prompt that teaches the tools, the grammar that guarantees calls,
and splitting the model's text back into content and calls (whole, or while streaming)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge_runtime.api.errors import ParameterError
from edge_runtime.api.generation import GrammarSpec
from edge_runtime.api.grammar_cache import GrammarCache
from edge_runtime.engine.chat_template import ChatTemplate
from edge_runtime.engine.tool_calls import (
    ParsedToolCall,
    SystemMessageBehavior,
    ToolFormat,
    ToolSpec,
    call_trigger,
    choose_format,
    format_tool_calls,
    parse_tool_calls,
    tool_system_prompt,
)
from edge_runtime.engine.types import GenerationRequest


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


def tool_constraint(use: ToolUse, grammars: GrammarCache) -> GrammarSpec:
    """required / named: the output is only calls; auto: free text that may end in calls. Either way every
    call parses and its arguments validate against the tool's schema."""
    from edge_runtime.engine.tool_calls_grammar import call_grammar

    required = use.choice != "auto"
    only = use.choice if use.choice not in ("auto", "required") else None
    grammar = call_grammar(use.tools, use.fmt, required=required, parallel=use.parallel, only=only)
    return GrammarSpec(grammars.gbnf(grammar.gbnf), grammar.unenforced)


def split_calls(text: str, use: ToolUse) -> tuple[str, list[ParsedToolCall]]:
    return parse_tool_calls(text, use.fmt, use.tools)


class StreamingCallSplitter:
    """Streams text until a call may be starting, holds the rest, and parses it when the choice ends.

    Text is emitted up to the first occurrence of the call trigger, keeping back any tail that could still
    grow into the trigger."""

    def __init__(self, use: ToolUse) -> None:
        self._use = use
        self._trigger = call_trigger(use.fmt)
        self._pending = ""
        self._holding = False

    def feed(self, text: str) -> str:
        self._pending += text
        if self._holding:
            return ""
        found = self._pending.find(self._trigger)
        if found >= 0:
            self._holding = True
            emit, self._pending = self._pending[:found], self._pending[found:]
            return emit
        keep = _longest_trigger_prefix_suffix(self._pending, self._trigger)
        emit = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(self._pending) - keep :]
        return emit

    def finish(self) -> tuple[str, list[ParsedToolCall]]:
        """The held text that is not a call, and the calls in it."""
        if not self._holding:
            rest, self._pending = self._pending, ""
            return rest, []
        content, calls = split_calls(self._pending, self._use)
        self._pending = ""
        return content, calls


def _longest_trigger_prefix_suffix(text: str, trigger: str) -> int:
    for size in range(min(len(trigger) - 1, len(text)), 0, -1):
        if text.endswith(trigger[:size]):
            return size
    return 0


def content_and_calls(text: str, use: ToolUse | None) -> tuple[str, list[ParsedToolCall]]:
    """The message text and the calls that parsed; a call that did not parse stays in the text, raw."""
    if use is None:
        return text, []
    content, calls = split_calls(text, use)
    failed = [c.raw for c in calls if c.error is not None]
    return "\n".join([content, *failed]).strip(), [c for c in calls if c.error is None]
