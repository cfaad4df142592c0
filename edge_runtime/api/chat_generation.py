"""A chat request ready for the engine, and the one way both chat translators (native and OpenAI, and the
Responses API through OpenAI's) build it once they have read their family's fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge_runtime.api.generation import GrammarSpec, TextModel, constraint_factory, render_chat
from edge_runtime.api.tool_use import ToolUse, prompt_messages, tool_constraint
from edge_runtime.engine.tool_calls import SystemMessageBehavior
from edge_runtime.engine.types import GenerationRequest, SamplingParams

if TYPE_CHECKING:
    from edge_runtime.grammar import GrammarCompiler

if TYPE_CHECKING:
    from edge_runtime.engine.chat_template import ChatTemplate


@dataclass
class ChatGeneration:
    """A chat request ready for the engine, and the tools its output must be split by (None: no tools)."""

    request: GenerationRequest
    tool_use: ToolUse | None
    unenforced: tuple[str, ...] = ()
    """Schema keywords the decoding grammar leaves out (OpenAI `strict: false`), for the response to name."""


@dataclass(frozen=True)
class ChatDecoding:
    """What a chat request asks of decoding, in the engine's terms, whichever family it came in."""

    sampling: SamplingParams
    max_tokens: int | None
    stop: list[str]
    n: int = 1
    logprobs: int | None = None


def build_chat_generation(
    model: TextModel,
    template: ChatTemplate,
    messages: list[dict[str, Any]],
    decoding: ChatDecoding,
    *,
    use: ToolUse | None,
    spec: GrammarSpec | None,
    grammars: GrammarCompiler,
    system_message_behavior: SystemMessageBehavior = "append",
) -> ChatGeneration:
    """The tail both translators share. With tools, the messages get the tools' prompt and decoding the call
    grammar; `spec` is then None (each family refuses a response format beside tools in its own words, before).
    The template's stop strings join the request's."""
    tools = None
    if use is not None:
        messages, tools = prompt_messages(messages, use, system_message_behavior)
        spec = tool_constraint(use, grammars)
    prompt, template_stops = render_chat(model, template, messages, tools)
    request = GenerationRequest(
        prompt_tokens=prompt,
        sampling=decoding.sampling,
        max_tokens=decoding.max_tokens,
        stop=decoding.stop + [s for s in template_stops if s not in decoding.stop],
        n=decoding.n,
        logprobs=decoding.logprobs,
        constraint_factory=constraint_factory(spec, model),
    )
    return ChatGeneration(request, use, spec.unenforced if spec is not None else ())
