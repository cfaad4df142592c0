"""Turns a conversation into prompt text with the model's chat template, as Hugging Face renders it.

Templates come from three places, in this order: an override (template text or a built-in name, e.g. from the
store manifest), the GGUF's `tokenizer.chat_template`, or a built-in chosen by architecture. Templates are
untrusted programs from model files: they compile and render in jinja2's immutable sandbox, in a separate
process with a memory limit that is killed past a deadline (template_worker.py says why, and what it costs).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_runtime.engine.template_sandbox import ChatTemplateError
from edge_runtime.engine.template_worker import default_renderer

TemplateOrigin = Literal["override", "gguf", "builtin"]
Family = Literal["gemma", "llama3", "chatml"]


# Built-in templates: written for string contents (list contents are flattened before rendering). Assistant
# tool calls that reach a built-in are rendered in the generic tool-call form of tool_calls.py:
# one `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>` block per call.
_TOOL_CALLS_MACRO = r"""
{%- macro render_tool_calls(message) -%}
{%- for call in message.tool_calls or [] -%}
{%- set fn = call.function if call.function is defined else call -%}
{%- if not loop.first or message.content %}{{ '\n' }}{% endif -%}
{{- '<tool_call>\n{"name": ' + (fn.name | tojson) + ', "arguments": ' -}}
{%- if fn.arguments is string %}{{ fn.arguments }}{% else %}{{ fn.arguments | tojson }}{% endif -%}
{{- '}\n</tool_call>' -}}
{%- endfor -%}
{%- endmacro -%}
"""

_GEMMA = (
    _TOOL_CALLS_MACRO
    + r"""
{{- bos_token -}}
{%- set ns = namespace(pending='') -%}
{%- for message in messages -%}
{%- if message.role == 'system' -%}
{%- set ns.pending = ns.pending + ((message.content or '') | trim) + '\n\n' -%}
{%- elif message.role == 'user' -%}
{{- '<start_of_turn>user\n' + ns.pending + ((message.content or '') | trim) + '<end_of_turn>\n' -}}
{%- set ns.pending = '' -%}
{%- elif message.role == 'tool' -%}
{{- '<start_of_turn>user\n' + ns.pending + '<tool_response>\n' + ((message.content or '') | trim) -}}
{{- '\n</tool_response><end_of_turn>\n' -}}
{%- set ns.pending = '' -%}
{%- elif message.role == 'assistant' -%}
{{- '<start_of_turn>model\n' + ((message.content or '') | trim) + render_tool_calls(message) -}}
{{- '<end_of_turn>\n' -}}
{%- else -%}
{{- raise_exception('the gemma template has no role ' + message.role) -}}
{%- endif -%}
{%- endfor -%}
{%- if ns.pending -%}
{{- '<start_of_turn>user\n' + (ns.pending | trim) + '<end_of_turn>\n' -}}
{%- endif -%}
{%- if add_generation_prompt -%}
{{- '<start_of_turn>model\n' -}}
{%- endif -%}
"""
)

_LLAMA3 = (
    _TOOL_CALLS_MACRO
    + r"""
{{- bos_token -}}
{%- for message in messages -%}
{%- if message.role in ['system', 'user', 'assistant', 'ipython', 'tool'] -%}
{%- set role = 'ipython' if message.role == 'tool' else message.role -%}
{{- '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + ((message.content or '') | trim) -}}
{{- render_tool_calls(message) + '<|eot_id|>' -}}
{%- else -%}
{{- raise_exception('the llama3 template has no role ' + message.role) -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
{%- endif -%}
"""
)

_CHATML = (
    _TOOL_CALLS_MACRO
    + r"""
{%- for message in messages -%}
{%- if message.role == 'tool' -%}
{{- '<|im_start|>user\n<tool_response>\n' + (message.content or '') + '\n</tool_response><|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>' + message.role + '\n' + (message.content or '') + render_tool_calls(message) -}}
{{- '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%}
"""
)

BUILTIN_TEMPLATES: dict[str, str] = {"gemma": _GEMMA, "llama3": _LLAMA3, "chatml": _CHATML}
"""Built-in template texts by name; a manifest override may name one of these."""

END_OF_TURN_MARKERS: dict[Family, tuple[str, ...]] = {
    "gemma": ("<end_of_turn>",),
    "llama3": ("<|eot_id|>", "<|eom_id|>"),
    "chatml": ("<|im_end|>",),
}
"""The text each family's assistant turn ends with; generation stops there."""

_ARCHITECTURE_FAMILIES: dict[str, Family] = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "gemma3n": "gemma",
    "llama": "llama3",
    "qwen2": "chatml",
    "qwen2moe": "chatml",
    "qwen3": "chatml",
    "qwen3moe": "chatml",
}

_RESERVED_VARIABLES = frozenset({"messages", "add_generation_prompt", "tools", "bos_token", "eos_token"})
_MENTIONS_TOOLS = re.compile(r"\btools\b")
_TYPED_CONTENT_PROBE = "\u2063typed-content-probe\u2063"


def family_for_architecture(architecture: str) -> Family:
    """The built-in family for a GGUF `general.architecture`; ChatML for architectures we do not know."""
    return _ARCHITECTURE_FAMILIES.get(architecture.lower(), "chatml")


def _family_of_text(source: str) -> Family | None:
    for family, markers in END_OF_TURN_MARKERS.items():
        if markers[0] in source:
            return family
    return None


@dataclass
class ChatTemplate:
    """One compiled chat template. Build it with `for_model` (which keeps the last few built, so a template
    is compiled and probed once, not per request); `render` is safe to call from many threads."""

    source: str
    origin: TemplateOrigin
    family: Family | None
    """The built-in family of the template (by name, or by its end-of-turn marker); None if unknown."""
    _typed_content: bool | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        default_renderer().compile(self.source, self.label)

    @property
    def label(self) -> str:
        """How errors name this template to a client."""
        if self.origin == "builtin":
            return f"the built-in {self.family} chat template"
        if self.origin == "override":
            return "the model's chat template override"
        return "the model's chat template"

    @classmethod
    def for_model(
        cls, *, gguf_template: str | None, architecture: str, override: str | None = None
    ) -> ChatTemplate:
        """The override (a built-in name or template text) wins, then the GGUF's template, then a built-in."""
        if override is not None:
            if not override.strip():
                raise ChatTemplateError("the chat template override is empty")
            if override in BUILTIN_TEMPLATES:
                return cls.builtin(override)
            return _built(override, "override", _family_of_text(override))
        if gguf_template and gguf_template.strip():
            return _built(gguf_template, "gguf", _family_of_text(gguf_template))
        return cls.builtin(family_for_architecture(architecture))

    @classmethod
    def builtin(cls, name: str) -> ChatTemplate:
        if name not in BUILTIN_TEMPLATES:
            known = ", ".join(sorted(BUILTIN_TEMPLATES))
            raise ChatTemplateError(f"no built-in chat template named '{name}' (known: {known})")
        family: Family = name  # type: ignore[assignment]  # the keys of BUILTIN_TEMPLATES are families
        return _built(BUILTIN_TEMPLATES[name], "builtin", family)

    @property
    def supports_tools(self) -> bool:
        """True when the template itself renders the `tools` variable (so tools need no prompt of ours)."""
        return bool(_MENTIONS_TOOLS.search(self.source))

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """End-of-turn markers of the template's family, or every known marker its text writes."""
        if self.family is not None and self.origin == "builtin":
            return END_OF_TURN_MARKERS[self.family]
        return tuple(m for markers in END_OF_TURN_MARKERS.values() for m in markers if m in self.source)

    def render(
        self,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: list[dict[str, Any]] | None = None,
        bos_token: str = "",
        eos_token: str = "",
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Render Hugging Face-shaped messages (content as a string or a list of text parts) to prompt text.

        `tools` are HF tool schemas (`{"type": "function", "function": {...}}`); a template that does not
        render tools refuses them rather than dropping them. `extra` adds template variables (e.g.
        `enable_thinking`); it may not replace the standard ones.
        """
        if tools and not self.supports_tools:
            raise ChatTemplateError(
                "this chat template does not render tools; describe them in the system message instead"
            )
        extra = extra or {}
        clashing = sorted(_RESERVED_VARIABLES.intersection(extra))
        if clashing:
            raise ChatTemplateError(f"extra template variables may not replace {', '.join(clashing)}")
        checked = [_checked_message(i, m) for i, m in enumerate(messages)]
        if not self._renders_typed_content():
            checked = [_with_flat_content(i, m) for i, m in enumerate(checked)]
        return self._render(
            {
                **extra,
                "messages": checked,
                "add_generation_prompt": add_generation_prompt,
                "tools": tools or None,
                "bos_token": bos_token,
                "eos_token": eos_token,
            }
        )

    def _render(self, variables: dict[str, Any]) -> str:
        return default_renderer().render(self.source, variables, self.label)

    def _renders_typed_content(self) -> bool:
        """Whether the template reads list contents itself; if not, text parts are joined before rendering."""
        if self._typed_content is None:
            probe = [{"role": "user", "content": [{"type": "text", "text": _TYPED_CONTENT_PROBE}]}]
            try:
                out = self._render(
                    {
                        "messages": probe,
                        "add_generation_prompt": False,
                        "tools": None,
                        "bos_token": "",
                        "eos_token": "",
                    }
                )
            except ChatTemplateError:
                out = ""
            self._typed_content = _TYPED_CONTENT_PROBE in out and "'type'" not in out and '"type"' not in out
        return self._typed_content


@functools.lru_cache(maxsize=32)
def _built(source: str, origin: TemplateOrigin, family: Family | None) -> ChatTemplate:
    return ChatTemplate(source=source, origin=origin, family=family)


def _checked_message(index: int, message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise ChatTemplateError(f"messages[{index}] is not an object")
    role = message.get("role")
    if not isinstance(role, str) or not role:
        raise ChatTemplateError(f"messages[{index}] has no role")
    content = message.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise ChatTemplateError(f"messages[{index}].content must be a string, a list of parts or null")
    return message


def _with_flat_content(index: int, message: dict[str, Any]) -> dict[str, Any]:
    """Joins a list of text parts with newlines, for templates that expect a string."""
    content = message.get("content")
    if not isinstance(content, list):
        return message
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise ChatTemplateError(f"messages[{index}].content: this chat template renders text parts only")
        texts.append(part["text"])
    return {**message, "content": "\n".join(texts)}
