"""OpenAI Responses API wire types (`/v1/responses`), fields in the order of OpenAI's API reference; an unknown
request key is a 400 naming it, as on the other OpenAI routes."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from edge_runtime.api.openai_types import OpenAIRequest, OpenAIResponse


def item_id(prefix: str) -> str:
    """OpenAI's id style for responses and their items: `resp_...`, `msg_...`, `fc_...`."""
    return f"{prefix}_{uuid.uuid4().hex}"


# ---- input items ---------------------------------------------------------------------------------------------


class InputText(OpenAIRequest):
    type: Literal["input_text"]
    text: str


class OutputText(OpenAIRequest):
    """An earlier answer's text sent back; its citations and logprobs describe that answer, not the prompt."""

    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None


class Refusal(OpenAIRequest):
    type: Literal["refusal"]
    refusal: str


MessagePart = Annotated[InputText | OutputText | Refusal, Field(discriminator="type")]


class MessageItem(OpenAIRequest):
    """A turn of the conversation; `id`, `status` and `phase` arrive when an output message is sent back."""

    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[MessagePart]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None
    phase: Literal["commentary", "final_answer"] | None = None


class FunctionCallItem(OpenAIRequest):
    """A call the model made earlier (an output item sent back as input)."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallOutputItem(OpenAIRequest):
    """What the client's function returned for `call_id`."""

    type: Literal["function_call_output"]
    call_id: str
    output: str | list[InputText]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


def _item_kind(value: Any) -> str:
    """Message items may leave out `type` (OpenAI's "easy input message")."""
    if isinstance(value, dict):
        return str(value.get("type", "message"))
    return str(getattr(value, "type", "message"))


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
    Discriminator(_item_kind),
]


# ---- request -------------------------------------------------------------------------------------------------


class FormatText(OpenAIRequest):
    type: Literal["text"]


class FormatJSONObject(OpenAIRequest):
    type: Literal["json_object"]


class FormatJSONSchema(OpenAIRequest):
    type: Literal["json_schema"]
    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


TextFormat = Annotated[FormatText | FormatJSONObject | FormatJSONSchema, Field(discriminator="type")]


class TextConfig(OpenAIRequest):
    format: TextFormat | None = None


class FunctionTool(OpenAIRequest):
    """Flat, unlike chat's `{"type": "function", "function": {...}}`."""

    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionToolChoice(OpenAIRequest):
    type: Literal["function"]
    name: str


ToolChoice = Literal["auto", "required", "none"] | FunctionToolChoice


class ResponseCreateRequest(OpenAIRequest):
    model: str
    input: str | list[InputItem]
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    metadata: dict[str, str] | None = None
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    safety_identifier: str | None = None
    store: bool | None = True
    stream: bool | None = False
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    text: TextConfig | None = None
    tool_choice: ToolChoice | None = None
    tools: list[FunctionTool] | None = None
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    user: str | None = None


# ---- response ------------------------------------------------------------------------------------------------


class OutputTextPart(OpenAIResponse):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[dict[str, Any]] = Field(default_factory=list)
    logprobs: list[dict[str, Any]] = Field(default_factory=list)


ItemStatus = Literal["in_progress", "completed", "incomplete"]


class OutputMessage(OpenAIResponse):
    type: Literal["message"] = "message"
    id: str = Field(default_factory=lambda: item_id("msg"))
    role: Literal["assistant"] = "assistant"
    status: ItemStatus
    content: list[OutputTextPart]


class OutputFunctionCall(OpenAIResponse):
    type: Literal["function_call"] = "function_call"
    id: str = Field(default_factory=lambda: item_id("fc"))
    call_id: str
    name: str
    arguments: str
    status: ItemStatus


OutputItem = Annotated[OutputMessage | OutputFunctionCall, Field(discriminator="type")]


class InputTokensDetails(OpenAIResponse):
    cached_tokens: int
    cache_write_tokens: int = 0


class OutputTokensDetails(OpenAIResponse):
    reasoning_tokens: int = 0


class ResponseUsage(OpenAIResponse):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(OpenAIResponse):
    reason: Literal["max_output_tokens"]


class ResponseError(OpenAIResponse):
    code: str
    message: str


ResponseStatus = Literal["completed", "incomplete", "in_progress", "failed"]


class Response(OpenAIResponse):
    id: str = Field(default_factory=lambda: item_id("resp"))
    object: Literal["response"] = "response"
    created_at: float = Field(default_factory=time.time)
    status: ResponseStatus
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    model: str
    output: list[OutputItem] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    safety_identifier: str | None = None
    store: bool = True
    temperature: float | None = None
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: str | dict[str, Any] = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    top_p: float | None = None
    usage: ResponseUsage | None = None
    user: str | None = None


class ResponseDeleted(OpenAIResponse):
    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: Literal[True] = True
