"""OpenAI wire types, fields in the order of OpenAI's API reference; an unknown request key is a 400 naming it."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class OpenAIRequest(BaseModel):
    """Base of every OpenAI request: an unknown parameter fails validation with its name (never dropped)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class OpenAIResponse(BaseModel):
    """Base of every OpenAI response object."""

    model_config = ConfigDict(extra="forbid")


def _created() -> int:
    return int(time.time())


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class StreamOptions(OpenAIRequest):
    include_usage: bool | None = None


# ---- structured output (chat, and completions as vLLM and llama-server accept it) -----------------------


class ResponseFormatText(OpenAIRequest):
    type: Literal["text"]


class ResponseFormatJSONObject(OpenAIRequest):
    type: Literal["json_object"]


class JSONSchemaFormat(OpenAIRequest):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResponseFormatJSONSchema(OpenAIRequest):
    type: Literal["json_schema"]
    json_schema: JSONSchemaFormat


ResponseFormat = Annotated[
    ResponseFormatText | ResponseFormatJSONObject | ResponseFormatJSONSchema, Field(discriminator="type")
]


# ---- completions ---------------------------------------------------------------------------------------------


class CompletionRequest(OpenAIRequest):
    model: str
    prompt: str | list[str] | list[int] | list[list[int]]
    best_of: int | None = Field(default=None, ge=1)
    echo: bool | None = False
    frequency_penalty: float | None = Field(default=0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tokens: int | None = Field(default=16, ge=0)
    n: int | None = Field(default=1, ge=1)
    presence_penalty: float | None = Field(default=0.0, ge=-2.0, le=2.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    temperature: float | None = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float | None = Field(default=1.0, gt=0.0, le=1.0)
    user: str | None = None
    # -- vLLM and llama-server extras --
    guided_choice: list[str] | None = None
    guided_json: dict[str, Any] | str | None = None
    guided_grammar: str | None = None
    prompt_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    top_k: int | None = Field(default=None, ge=-1)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0)


class CompletionLogprobs(OpenAIResponse):
    text_offset: list[int]
    token_logprobs: list[float | None]
    tokens: list[str]
    top_logprobs: list[dict[str, float] | None]


class PromptLogprob(OpenAIResponse):
    """vLLM's Logprob: one token of a prompt position, rank 1 for the likeliest."""

    logprob: float
    rank: int
    decoded_token: str


class CompletionChoice(OpenAIResponse):
    finish_reason: Literal["stop", "length", "content_filter"] | None
    index: int
    logprobs: CompletionLogprobs | None
    text: str
    # -- vLLM extra, present only when asked (on a stream, on each choice's first chunk) --
    prompt_logprobs: list[dict[str, PromptLogprob] | None] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )


class CompletionUsage(OpenAIResponse):
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int


class Completion(OpenAIResponse):
    id: str = Field(default_factory=lambda: _id("cmpl"))
    choices: list[CompletionChoice]
    created: int = Field(default_factory=_created)
    model: str
    object: Literal["text_completion"] = "text_completion"
    system_fingerprint: str | None = None
    usage: CompletionUsage | None = None


# ---- chat ----------------------------------------------------------------------------------------------------


class TextPart(OpenAIRequest):
    type: Literal["text"]
    text: str


class ImageURL(OpenAIRequest):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(OpenAIRequest):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(BaseModel):
    name: str
    arguments: str


class ToolCallRequestPart(OpenAIRequest):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(OpenAIRequest):
    role: Literal["system"]
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(OpenAIRequest):
    role: Literal["developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(OpenAIRequest):
    role: Literal["user"]
    content: str | list[ContentPart]
    name: str | None = None


class AssistantMessage(OpenAIRequest):
    """As the SDK's `message.model_dump()` sends a previous answer back: `annotations` (URL citations) and
    `audio` (the id of a spoken answer) describe that answer and do not change the prompt."""

    role: Literal["assistant"]
    content: str | list[TextPart] | None = None
    refusal: str | None = None
    name: str | None = None
    tool_calls: list[ToolCallRequestPart] | None = None
    function_call: FunctionCall | None = None
    annotations: list[dict[str, Any]] | None = None
    audio: dict[str, Any] | None = None


class ToolMessage(OpenAIRequest):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str
    name: str | None = None


class FunctionMessage(OpenAIRequest):
    role: Literal["function"]
    content: str | None
    name: str


ChatMessage = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage,
    Field(discriminator="role"),
]


class FunctionDefinition(OpenAIRequest):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDefinition(OpenAIRequest):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(OpenAIRequest):
    name: str


class NamedToolChoice(OpenAIRequest):
    type: Literal["function"]
    function: NamedFunction


class ChatCompletionRequest(OpenAIRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    model: str
    frequency_penalty: float | None = Field(default=0.0, ge=-2.0, le=2.0)
    function_call: Literal["none", "auto"] | NamedFunction | None = None
    functions: list[FunctionDefinition] | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = False
    max_completion_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    n: int | None = Field(default=1, ge=1)
    parallel_tool_calls: bool | None = None
    presence_penalty: float | None = Field(default=0.0, ge=-2.0, le=2.0)
    response_format: ResponseFormat | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=1.0, ge=0.0, le=2.0)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    tools: list[ToolDefinition] | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    top_p: float | None = Field(default=1.0, gt=0.0, le=1.0)
    user: str | None = None
    # -- accepted and safely ignored: nothing is stored, there is one service tier, prefix reuse is automatic --
    store: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    # -- vLLM and llama-server extras --
    guided_choice: list[str] | None = None
    guided_json: dict[str, Any] | str | None = None
    guided_grammar: str | None = None
    top_k: int | None = Field(default=None, ge=-1)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0)


class TopLogprob(OpenAIResponse):
    token: str
    bytes: list[int] | None
    logprob: float


class TokenLogprob(OpenAIResponse):
    token: str
    bytes: list[int] | None
    logprob: float
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(OpenAIResponse):
    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None = None


class ResponseFunctionCall(OpenAIResponse):
    name: str
    arguments: str


class ResponseToolCall(OpenAIResponse):
    id: str
    type: Literal["function"] = "function"
    function: ResponseFunctionCall


class ChatCompletionMessage(OpenAIResponse):
    content: str | None
    refusal: str | None = None
    role: Literal["assistant"] = "assistant"
    tool_calls: list[ResponseToolCall] | None = None


ChatFinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class ChatChoice(OpenAIResponse):
    finish_reason: ChatFinishReason
    index: int
    logprobs: ChoiceLogprobs | None
    message: ChatCompletionMessage


class ChatCompletion(OpenAIResponse):
    id: str = Field(default_factory=lambda: _id("chatcmpl"))
    choices: list[ChatChoice]
    created: int = Field(default_factory=_created)
    model: str
    object: Literal["chat.completion"] = "chat.completion"
    system_fingerprint: str | None = None
    usage: CompletionUsage | None = None


class _WithoutNulls(OpenAIResponse):
    """A tool-call delta leaves out what it does not carry, as OpenAI's do: the SDK's stream accumulator
    would take a `"type": null` in an arguments piece for a new value and lose the call's type."""

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class ChunkFunctionCall(_WithoutNulls):
    name: str | None = None
    arguments: str | None = None


class ChunkToolCall(_WithoutNulls):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ChunkFunctionCall | None = None


class ChunkDelta(OpenAIResponse):
    content: str | None = None
    refusal: str | None = None
    role: Literal["assistant"] | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChunkChoice(OpenAIResponse):
    delta: ChunkDelta
    finish_reason: ChatFinishReason | None = None
    index: int
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(OpenAIResponse):
    id: str
    choices: list[ChunkChoice]
    created: int
    model: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    system_fingerprint: str | None = None
    usage: CompletionUsage | None = None


# ---- embeddings ----------------------------------------------------------------------------------------------


class EmbeddingRequest(OpenAIRequest):
    input: str | list[str] | list[int] | list[list[int]]
    model: str
    dimensions: int | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] | None = "float"
    user: str | None = None


class Embedding(OpenAIResponse):
    embedding: list[float] | str
    index: int
    object: Literal["embedding"] = "embedding"


class EmbeddingUsage(OpenAIResponse):
    prompt_tokens: int
    total_tokens: int


class CreateEmbeddingResponse(OpenAIResponse):
    data: list[Embedding]
    model: str
    object: Literal["list"] = "list"
    usage: EmbeddingUsage


# ---- models and errors ---------------------------------------------------------------------------------------


class OpenAIModel(OpenAIResponse):
    id: str
    created: int
    object: Literal["model"] = "model"
    owned_by: str


class ModelList(OpenAIResponse):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class ErrorDetail(OpenAIResponse):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(OpenAIResponse):
    error: ErrorDetail
