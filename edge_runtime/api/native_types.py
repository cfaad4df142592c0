"""Llama Stack 0.2.x inference wire types (see shared/API.md); unknown keys are ignored because its clients send extras."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class NativeModel(BaseModel):
    """Base of every native type: extra keys are ignored (clients send fields we do not model, e.g. tool_name);
    NaN and Infinity, which JSON does not have, are refused."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, allow_inf_nan=False)


# ---- content -------------------------------------------------------------------------------------------------


class TextContentItem(NativeModel):
    type: Literal["text"] = "text"
    text: str


class ImageURL(NativeModel):
    uri: str


class ImageSource(NativeModel):
    url: ImageURL | None = None
    data: str | None = None


class ImageContentItem(NativeModel):
    type: Literal["image"] = "image"
    image: ImageSource


ContentItem = Annotated[TextContentItem | ImageContentItem, Field(discriminator="type")]
InterleavedContent = str | ContentItem | list[ContentItem]


# ---- sampling ------------------------------------------------------------------------------------------------


class GreedySamplingStrategy(NativeModel):
    type: Literal["greedy"] = "greedy"


class TopPSamplingStrategy(NativeModel):
    type: Literal["top_p"] = "top_p"
    temperature: float = Field(gt=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)


class TopKSamplingStrategy(NativeModel):
    type: Literal["top_k"] = "top_k"
    top_k: int = Field(ge=1)


SamplingStrategy = Annotated[
    GreedySamplingStrategy | TopPSamplingStrategy | TopKSamplingStrategy, Field(discriminator="type")
]


class SamplingParams(NativeModel):
    strategy: SamplingStrategy = Field(default_factory=GreedySamplingStrategy)
    max_tokens: int | None = Field(default=0, ge=0)
    repetition_penalty: float | None = Field(default=1.0, gt=0.0)
    stop: list[str] | None = None


TOP_LOGPROBS_LIMIT = 20
"""Most alternatives a request may ask per token (native `logprobs.top_k`; the OpenAI types cap `top_logprobs`
and completions `logprobs` alike, as OpenAI caps `top_logprobs`): unbounded, one request asking for the whole
vocabulary answered 124 MB and grew the server by 1.7 GB."""


class LogProbConfig(NativeModel):
    top_k: int | None = Field(default=0, ge=0, le=TOP_LOGPROBS_LIMIT)


class JsonSchemaResponseFormat(NativeModel):
    type: Literal["json_schema"] = "json_schema"
    json_schema: dict[str, Any]


class GrammarResponseFormat(NativeModel):
    type: Literal["grammar"] = "grammar"
    bnf: dict[str, Any] | str
    """Read keys: `grammar` (GBNF text); a plain string is the GBNF text itself."""


ResponseFormat = Annotated[JsonSchemaResponseFormat | GrammarResponseFormat, Field(discriminator="type")]


# ---- tools ---------------------------------------------------------------------------------------------------

BuiltinTool = Literal["brave_search", "wolfram_alpha", "photogen", "code_interpreter"]


class ToolCall(NativeModel):
    call_id: str
    tool_name: BuiltinTool | str
    arguments: dict[str, Any] | str
    arguments_json: str | None = None


class ToolParamDefinition(NativeModel):
    param_type: str
    description: str | None = None
    required: bool = True
    default: Any = None


class ToolDefinition(NativeModel):
    tool_name: BuiltinTool | str
    description: str | None = None
    parameters: dict[str, ToolParamDefinition] | None = None


ToolChoice = Literal["auto", "required", "none"] | str
ToolPromptFormat = Literal["json", "function_tag", "python_list"]


class ToolConfig(NativeModel):
    tool_choice: ToolChoice | None = "auto"
    tool_prompt_format: ToolPromptFormat | None = None
    system_message_behavior: Literal["append", "replace"] | None = "append"


# ---- messages ------------------------------------------------------------------------------------------------

StopReason = Literal["end_of_turn", "end_of_message", "out_of_tokens"]


class UserMessage(NativeModel):
    role: Literal["user"] = "user"
    content: InterleavedContent
    context: InterleavedContent | None = None


class SystemMessage(NativeModel):
    role: Literal["system"] = "system"
    content: InterleavedContent


class ToolResponseMessage(NativeModel):
    role: Literal["tool"] = "tool"
    call_id: str
    content: InterleavedContent


class CompletionMessage(NativeModel):
    role: Literal["assistant"] = "assistant"
    content: InterleavedContent
    stop_reason: StopReason
    tool_calls: list[ToolCall] = Field(default_factory=list)


Message = Annotated[
    UserMessage | SystemMessage | ToolResponseMessage | CompletionMessage, Field(discriminator="role")
]


# ---- requests ------------------------------------------------------------------------------------------------


class CompletionRequest(NativeModel):
    model_id: str
    content: InterleavedContent
    sampling_params: SamplingParams | None = None
    response_format: ResponseFormat | None = None
    stream: bool | None = False
    logprobs: LogProbConfig | None = None


class ChatCompletionRequest(NativeModel):
    model_id: str
    messages: list[Message]
    sampling_params: SamplingParams | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoice | None = None
    tool_prompt_format: ToolPromptFormat | None = None
    response_format: ResponseFormat | None = None
    stream: bool | None = False
    logprobs: LogProbConfig | None = None
    tool_config: ToolConfig | None = None


class EmbeddingsRequest(NativeModel):
    model_id: str
    contents: list[str] | list[ContentItem]
    text_truncation: Literal["none", "start", "end"] | None = "none"
    output_dimension: int | None = Field(default=None, ge=1)
    task_type: Literal["query", "document"] | None = None


class RegisterModelRequest(NativeModel):
    model_id: str
    provider_model_id: str | None = None
    provider_id: str | None = None
    metadata: dict[str, Any] | None = None
    model_type: Literal["llm", "embedding"] | None = None


# ---- responses -----------------------------------------------------------------------------------------------


class MetricInResponse(NativeModel):
    metric: Literal["prompt_tokens", "completion_tokens", "total_tokens"]
    value: int
    unit: str | None = None


class TokenLogProbs(NativeModel):
    logprobs_by_token: dict[str, float]


class CompletionResponse(NativeModel):
    metrics: list[MetricInResponse]
    content: str
    stop_reason: StopReason
    logprobs: list[TokenLogProbs] | None = None


class CompletionResponseStreamChunk(NativeModel):
    metrics: list[MetricInResponse] | None = None
    delta: str
    stop_reason: StopReason | None = None
    logprobs: list[TokenLogProbs] | None = None


class ResponseCompletionMessage(NativeModel):
    """The assistant message of a response: content is always text here."""

    role: Literal["assistant"] = "assistant"
    content: str
    stop_reason: StopReason
    tool_calls: list[ToolCall] = Field(default_factory=list)


class ChatCompletionResponse(NativeModel):
    metrics: list[MetricInResponse]
    completion_message: ResponseCompletionMessage
    logprobs: list[TokenLogProbs] | None = None


class TextDelta(NativeModel):
    type: Literal["text"] = "text"
    text: str


class ToolCallDelta(NativeModel):
    type: Literal["tool_call"] = "tool_call"
    tool_call: ToolCall | str
    parse_status: Literal["started", "in_progress", "failed", "succeeded"]


ContentDelta = Annotated[TextDelta | ToolCallDelta, Field(discriminator="type")]


class ChatCompletionResponseEvent(NativeModel):
    event_type: Literal["start", "progress", "complete"]
    delta: ContentDelta
    logprobs: list[TokenLogProbs] | None = None
    stop_reason: StopReason | None = None


class ChatCompletionResponseStreamChunk(NativeModel):
    metrics: list[MetricInResponse] | None = None
    event: ChatCompletionResponseEvent


class EmbeddingsResponse(NativeModel):
    embeddings: list[list[float]]


class Model(NativeModel):
    identifier: str
    provider_resource_id: str | None
    provider_id: str
    type: Literal["model"] = "model"
    metadata: dict[str, Any]
    model_type: Literal["llm", "embedding"]


class ModelListing(Model):
    """A `Model` that also carries OpenAI's model fields, so `/v1/models` satisfies both SDKs."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ListModelsResponse(NativeModel):
    """`/v1/models`: Llama Stack reads `data`; the openai SDK reads `object` and `data` too."""

    object: Literal["list"] = "list"
    data: list[ModelListing]


class ProviderInfo(NativeModel):
    api: Literal["inference"] = "inference"
    provider_id: str
    provider_type: str
    config: dict[str, Any]
    health: dict[str, Any]


class ListProvidersResponse(NativeModel):
    data: list[ProviderInfo]


class HealthInfo(NativeModel):
    status: Literal["OK", "Error", "Not Implemented"] = "OK"


class VersionInfo(NativeModel):
    version: str
