"""Provider types: what each upstream speaks (its dialect) and where it lives by default.

Each dialect lists the request parameters its OpenAI-compatible endpoint accepts beyond the core ones every
provider takes, and how it takes structured output. Written from each provider's documentation (the URLs are
beside each entry); `tests/upstreams/fixtures/` holds one recorded request and answer per hosted dialect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StructuredKind = Literal["json_schema", "json_object", "grammar", "choice"]
"""What a request asks its output to be: a JSON Schema, any JSON object, a GBNF grammar, one of some strings."""

SchemaStyle = Literal["response_format", "guided", "structured_outputs", "llama_server", "none"]
"""Where a dialect takes a JSON Schema: OpenAI's `response_format`, vLLM's old `guided_json`, vLLM's
`structured_outputs.json` (0.12+), llama-server's `response_format` with a `schema` on chat (llama-cpp-python's
server reads it too) and `json_schema` on completions."""

CORE_PARAMS = frozenset(
    {"model", "messages", "prompt", "input", "max_tokens", "temperature", "top_p", "stop", "stream", "n", "seed",
     "user", "frequency_penalty", "presence_penalty", "stream_options", "encoding_format"}
)
"""Parameters every provider's chat, completions or embeddings endpoint takes."""

OPENAI_PARAMS = CORE_PARAMS | frozenset(
    {"logit_bias", "logprobs", "top_logprobs", "max_completion_tokens", "parallel_tool_calls", "tools",
     "tool_choice", "response_format", "function_call", "functions", "store", "metadata", "service_tier",
     "prompt_cache_key", "safety_identifier", "best_of", "echo", "suffix", "dimensions"}
)
"""OpenAI's own parameters (https://platform.openai.com/docs/api-reference/chat/create)."""

EXTRA_SAMPLING = frozenset({"top_k", "min_p", "repetition_penalty"})
"""Sampling parameters beyond OpenAI's (vLLM and llama-server take them; OpenAI refuses them)."""

STRUCTURED_PARAMS = frozenset({"response_format", "guided_json", "guided_grammar", "guided_choice"})
"""The request parameters that ask for structured output; shaping rewrites them into the dialect's own."""


@dataclass(frozen=True)
class Dialect:
    """How one family of servers takes a request. `accepts` is every top-level parameter it takes (ours, before
    shaping: a renamed one is listed under our name); `structured` is what it can enforce."""

    name: str
    accepts: frozenset[str]
    structured: frozenset[StructuredKind]
    schema_style: SchemaStyle = "response_format"
    renames: tuple[tuple[str, str], ...] = ()
    """Our parameter name, the dialect's (llama-server's `repeat_penalty`)."""
    completions: bool = True
    """Serves the legacy `/completions` (text in, text out)."""
    embeddings: bool = True
    passthrough: bool = False
    """Another edge-runtime: every parameter and structured form goes through unchanged."""
    grammar_format: bool = False
    """Takes a GBNF grammar as `response_format: {"type": "grammar", "grammar": ...}` (Fireworks)."""


_ALL_STRUCTURED: frozenset[StructuredKind] = frozenset({"json_schema", "json_object", "grammar", "choice"})
_JSON_ONLY: frozenset[StructuredKind] = frozenset({"json_schema", "json_object"})

OPENAI = Dialect("openai", OPENAI_PARAMS, _JSON_ONLY)
OPENAI_COMPAT = Dialect("openai-compat", OPENAI_PARAMS, _JSON_ONLY)
EDGE_RUNTIME = Dialect(
    "edge-runtime",
    OPENAI_PARAMS | EXTRA_SAMPLING | STRUCTURED_PARAMS | {"prompt_logprobs"},
    _ALL_STRUCTURED,
    passthrough=True,
)
# https://docs.vllm.ai/en/latest/features/structured_outputs/ (guided_* removed in 0.12: structured_outputs)
VLLM = Dialect(
    "vllm",
    OPENAI_PARAMS | EXTRA_SAMPLING | STRUCTURED_PARAMS | {"prompt_logprobs"},
    _ALL_STRUCTURED,
    schema_style="structured_outputs",
)
# https://github.com/ggml-org/llama.cpp/tree/master/tools/server (POST /v1/chat/completions, /completion options)
LLAMA_SERVER = Dialect(
    "llama-server",
    OPENAI_PARAMS | EXTRA_SAMPLING | STRUCTURED_PARAMS,
    _ALL_STRUCTURED,
    schema_style="llama_server",
    renames=(("repetition_penalty", "repeat_penalty"),),
)
# https://docs.ollama.com/api/openai-compatibility (its `format` is reached through response_format)
OLLAMA = Dialect(
    "ollama",
    CORE_PARAMS | {"response_format", "tools", "tool_choice", "logprobs", "top_logprobs", "dimensions"},
    _JSON_ONLY,
)
# https://docs.together.ai/docs/json-mode, https://docs.together.ai/reference/chat-completions-1
TOGETHER = Dialect("together", OPENAI_PARAMS | EXTRA_SAMPLING, _JSON_ONLY)
# https://docs.fireworks.ai/structured-responses/structured-response-formatting, .../structured-output-grammar-based
FIREWORKS = Dialect("fireworks", OPENAI_PARAMS | EXTRA_SAMPLING, _ALL_STRUCTURED, grammar_format=True)
# https://console.groq.com/docs/openai (logprobs, logit_bias, n>1 unsupported), structured-outputs
GROQ = Dialect(
    "groq",
    CORE_PARAMS | {"tools", "tool_choice", "parallel_tool_calls", "response_format", "max_completion_tokens"},
    _JSON_ONLY,
    completions=False,
    embeddings=False,
)
# https://inference-docs.cerebras.ai/resources/openai (response_format json_schema, strict)
CEREBRAS = Dialect(
    "cerebras",
    CORE_PARAMS | {"tools", "tool_choice", "parallel_tool_calls", "response_format", "max_completion_tokens",
                   "logprobs", "top_logprobs"},
    _JSON_ONLY,
    embeddings=False,
)
# https://docs.sambanova.ai/cloud/docs/capabilities/openai-compatibility
SAMBANOVA = Dialect(
    "sambanova",
    CORE_PARAMS | {"tools", "tool_choice", "parallel_tool_calls", "response_format", "max_completion_tokens",
                   "top_k", "logprobs", "top_logprobs"},
    _JSON_ONLY,
    completions=False,
)
# https://docs.nvidia.com/nim/large-language-models/latest/structured-generation.html (vLLM's guided_* in nvext)
NVIDIA = Dialect(
    "nvidia",
    OPENAI_PARAMS | {"top_k", "repetition_penalty"} | STRUCTURED_PARAMS,
    _ALL_STRUCTURED,
    schema_style="guided",
)
# https://ai.google.dev/gemini-api/docs/openai (response_format json_schema; no logprobs on chat)
GEMINI = Dialect(
    "gemini",
    CORE_PARAMS | {"tools", "tool_choice", "response_format", "max_completion_tokens", "dimensions",
                   "reasoning_effort"},
    _JSON_ONLY,
    completions=False,
)
# https://docs.claude.com/en/api/openai-sdk (response_format, logprobs, seed are ignored there: refused here)
ANTHROPIC = Dialect(
    "anthropic",
    frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
               "stream", "stream_options", "n", "tools", "tool_choice", "parallel_tool_calls"}),
    frozenset(),
    schema_style="none",
    completions=False,
    embeddings=False,
)


@dataclass(frozen=True)
class ProviderType:
    """A `--provider` value: its dialect, the base URL when it has a fixed one, and where its key usually is."""

    name: str
    dialect: Dialect
    default_base_url: str | None
    default_key_env: str | None = None

    @property
    def llama_stack_type(self) -> str:
        return f"remote::{self.name}"


PROVIDER_TYPES: dict[str, ProviderType] = {
    p.name: p
    for p in (
        ProviderType("openai-compat", OPENAI_COMPAT, None),
        ProviderType("vllm", VLLM, "http://127.0.0.1:8000/v1"),
        ProviderType("llama-server", LLAMA_SERVER, "http://127.0.0.1:8080/v1"),
        ProviderType("ollama", OLLAMA, "http://127.0.0.1:11434/v1"),
        ProviderType("edge-runtime", EDGE_RUNTIME, "http://127.0.0.1:8321/v1"),
        ProviderType("openai", OPENAI, "https://api.openai.com/v1", "OPENAI_API_KEY"),
        ProviderType("together", TOGETHER, "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        ProviderType("fireworks", FIREWORKS, "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
        ProviderType("groq", GROQ, "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        ProviderType("cerebras", CEREBRAS, "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
        ProviderType("sambanova", SAMBANOVA, "https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY"),
        ProviderType("nvidia", NVIDIA, "https://integrate.api.nvidia.com/v1", "NVIDIA_API_KEY"),
        ProviderType(
            "gemini", GEMINI, "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY"
        ),
        ProviderType("anthropic", ANTHROPIC, "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
    )
}
