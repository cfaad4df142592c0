"""Responses API requests through the chat machinery, and engine events back to Response objects and events.

A Responses request is rewritten as the chat request it means and handed to `chat_to_generation`, so the
template, tool grammar, `strict` semantics, closed objects and stop reasons are the chat route's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from edge_runtime.api import openai_types as ot
from edge_runtime.api import responses_types as rt
from edge_runtime.api.call_splitter import (
    ArgumentsPiece,
    CallStarted,
    SplitCall,
    StreamingCallSplitter,
    split_whole,
)
from edge_runtime.api.errors import ParameterError
from edge_runtime.api.generation import GenerationResult, TextModel
from edge_runtime.api.tool_use import ChatGeneration, ToolUse
from edge_runtime.api.translate_openai import chat_to_generation, response_tool_call
from edge_runtime.engine.types import ChoiceFinished, FinishReason, GenerationDone, GenerationEvent, TextPiece

if TYPE_CHECKING:
    from edge_runtime.grammar import GrammarCompiler

INPUT_ITEMS: TypeAdapter[list[rt.InputItem]] = TypeAdapter(list[rt.InputItem])

_CHAT_PARAMS = {
    "response_format": "text.format",
    "messages": "input",
    "max_tokens": "max_output_tokens",
    "functions": "tools",
    "function_call": "tool_choice",
}
"""Chat parameter names in the errors `chat_to_generation` raises, as this API spells them."""


# ---- request -------------------------------------------------------------------------------------------------


def input_items(body: rt.ResponseCreateRequest) -> list[rt.InputItem]:
    """This request's input as items (a string is one user message)."""
    if isinstance(body.input, str):
        return [rt.MessageItem(role="user", content=body.input)]
    return list(body.input)


def history_items(response: rt.Response, conversation: list[rt.InputItem]) -> list[rt.InputItem]:
    """A stored response's conversation followed by its output, as input items for the next turn."""
    return conversation + INPUT_ITEMS.validate_python([item.model_dump() for item in response.output])


def _text_of(content: str | list[rt.MessagePart] | list[rt.InputText]) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.refusal if isinstance(part, rt.Refusal) else part.text for part in content)


def chat_messages(instructions: str | None, items: list[rt.InputItem]) -> list[dict[str, Any]]:
    """Chat messages for the conversation: instructions first as the system message; consecutive calls join
    the assistant turn that made them; a call's output is a tool message."""
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        if isinstance(item, rt.MessageItem):
            messages.append({"role": item.role, "content": _text_of(item.content)})
        elif isinstance(item, rt.FunctionCallItem):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        else:
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": _text_of(item.output)})
    if not messages:
        raise ParameterError("input", "the input is empty")
    return messages


def _response_format(text: rt.TextConfig | None) -> dict[str, Any] | None:
    if text is None or text.format is None:
        return None
    fmt = text.format
    if isinstance(fmt, rt.FormatJSONSchema):
        schema = {"name": fmt.name, "schema": fmt.schema_, "description": fmt.description, "strict": fmt.strict}
        return {"type": "json_schema", "json_schema": schema}
    return {"type": fmt.type}


def _tool_choice(choice: rt.ToolChoice | None) -> str | dict[str, Any] | None:
    if isinstance(choice, rt.FunctionToolChoice):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def chat_request(body: rt.ResponseCreateRequest, items: list[rt.InputItem]) -> ot.ChatCompletionRequest:
    """The chat request this Responses request means (one choice, no logprobs)."""
    tools = [
        {"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)}
        for tool in body.tools or []
    ]
    return ot.ChatCompletionRequest.model_validate(
        {
            "model": body.model,
            "messages": chat_messages(body.instructions, items),
            "max_completion_tokens": body.max_output_tokens,
            "parallel_tool_calls": body.parallel_tool_calls,
            "response_format": _response_format(body.text),
            "temperature": body.temperature,
            "top_p": body.top_p,
            "tool_choice": _tool_choice(body.tool_choice),
            "tools": tools or None,
        }
    )


def responses_to_generation(
    body: rt.ResponseCreateRequest,
    items: list[rt.InputItem],
    model: TextModel,
    grammars: GrammarCompiler,
    template_override: str | None = None,
) -> ChatGeneration:
    """The chat route's translation; its errors and unenforced keywords name this API's parameters."""
    try:
        plan = chat_to_generation(chat_request(body, items), model, grammars, template_override)
    except ParameterError as exc:
        param = _CHAT_PARAMS.get(exc.param, exc.param)
        raise ParameterError(param, exc.reason) from None
    plan.unenforced = tuple(
        keyword.replace("response_format: ", "text.format: ", 1) for keyword in plan.unenforced
    )
    return plan


# ---- response ------------------------------------------------------------------------------------------------


def response_shell(body: rt.ResponseCreateRequest, response_id: str | None = None) -> rt.Response:
    """The response as created: the request's settings echoed, no output yet."""
    return rt.Response(
        id=response_id or rt.item_id("resp"),
        created_at=time.time(),
        status="in_progress",
        instructions=body.instructions,
        max_output_tokens=body.max_output_tokens,
        metadata=body.metadata or {},
        model=body.model,
        parallel_tool_calls=body.parallel_tool_calls is not False,
        previous_response_id=body.previous_response_id,
        safety_identifier=body.safety_identifier,
        store=body.store is not False,
        temperature=body.temperature,
        text=body.text.model_dump(by_alias=True, exclude_none=True)
        if body.text is not None and body.text.format is not None
        else {"format": {"type": "text"}},
        tool_choice=body.tool_choice.model_dump()
        if isinstance(body.tool_choice, rt.FunctionToolChoice)
        else body.tool_choice or "auto",
        tools=[tool.model_dump() for tool in body.tools or []],
        top_p=body.top_p,
        user=body.user,
    )


def _status(reason: FinishReason) -> rt.ItemStatus:
    return "incomplete" if reason == "length" else "completed"


def _function_call(call: SplitCall) -> rt.OutputFunctionCall:
    """A call cut off by max_output_tokens is an incomplete item with its partial arguments text."""
    arguments = response_tool_call(call).function.arguments
    status: rt.ItemStatus = "incomplete" if call.failed else "completed"
    return rt.OutputFunctionCall(call_id=call.call_id, name=call.name, arguments=arguments, status=status)


def response_usage(done: GenerationDone) -> rt.ResponseUsage:
    return rt.ResponseUsage(
        input_tokens=done.prompt_tokens,
        input_tokens_details=rt.InputTokensDetails(cached_tokens=done.cached_prompt_tokens),
        output_tokens=done.completion_tokens,
        total_tokens=done.prompt_tokens + done.completion_tokens,
    )


def finished(shell: rt.Response, output: list[rt.OutputItem], reason: FinishReason, done: GenerationDone) -> rt.Response:
    """The final response: `incomplete` (reason max_output_tokens) when generation was cut by the limit."""
    incomplete = reason == "length"
    return shell.model_copy(
        update={
            "status": "incomplete" if incomplete else "completed",
            "incomplete_details": rt.IncompleteDetails(reason="max_output_tokens") if incomplete else None,
            "output": output,
            "usage": response_usage(done),
        }
    )


def response_object(shell: rt.Response, result: GenerationResult, use: ToolUse | None) -> rt.Response:
    """A whole generation as a Response: a message item when there is text (or nothing else), then one
    function_call item per call, as on chat."""
    (choice,) = result.choices
    content, calls = split_whole(choice.text, use, cut_off=choice.finish_reason == "length")
    output: list[rt.OutputItem] = []
    if content or not calls:
        part = rt.OutputTextPart(text=content)
        output.append(rt.OutputMessage(status=_status(choice.finish_reason), content=[part]))
    output.extend(_function_call(call) for call in calls)
    return finished(shell, output, choice.finish_reason, result.done)


_FAILED_CODES = {"rate_limit_exceeded": "rate_limit_exceeded", "invalid_request_error": "invalid_prompt"}
"""OpenAI error types to the few codes a failed Response's `error` may carry (anything else: server_error)."""


class ResponseEvents:
    """Engine events to the Responses API's stream events, numbered in order: created and in_progress; the
    message item opened at its first text, its text deltas, then closed; each call as an item whose arguments
    stream as the model writes them; completed (or incomplete). `final` is the whole response once the generation is done."""

    def __init__(self, shell: rt.Response, use: ToolUse | None) -> None:
        self._shell = shell
        self._splitter = StreamingCallSplitter(use) if use is not None else None
        self._sequence = 0
        self._message: rt.OutputMessage | None = None
        self._text = ""
        self._output: list[rt.OutputItem] = []
        self._call: rt.OutputFunctionCall | None = None
        """The call item open while its arguments stream."""
        self._closed: set[str] = set()
        self._reason: FinishReason = "length"
        self.final: rt.Response | None = None

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        response = self._shell.model_dump(mode="json")
        return [self._event("response.created", response=response), self._event("response.in_progress", response=response)]

    def failure(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """An `error` event from the family's error body, then `response.failed` (the stream's status line
        has already gone out)."""
        detail = payload["error"]
        failed_code = _FAILED_CODES.get(detail.get("type"), "server_error")
        error = rt.ResponseError(code=failed_code, message=detail["message"])
        failed = self._shell.model_copy(update={"status": "failed", "error": error})
        return [
            self._event("error", code=detail.get("code"), message=detail["message"], param=detail.get("param")),
            self._event("response.failed", response=failed.model_dump(mode="json")),
        ]

    def _opened(self) -> tuple[rt.OutputMessage, list[dict[str, Any]]]:
        """The message item, opened (item and text part added) at its first use."""
        if self._message is not None:
            return self._message, []
        message = self._message = rt.OutputMessage(status="in_progress", content=[])
        index = len(self._output)
        part = rt.OutputTextPart(text="").model_dump(mode="json")
        return message, [
            self._event("response.output_item.added", output_index=index, item=message.model_dump(mode="json")),
            self._event(
                "response.content_part.added", item_id=message.id, output_index=index, content_index=0, part=part
            ),
        ]

    def _delta(self, text: str) -> Iterator[dict[str, Any]]:
        message, opening = self._opened()
        yield from opening
        self._text += text
        yield self._event(
            "response.output_text.delta",
            item_id=message.id,
            output_index=len(self._output),
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _close_message(self, status: rt.ItemStatus) -> Iterator[dict[str, Any]]:
        message, opening = self._opened()
        yield from opening
        index = len(self._output)
        part = rt.OutputTextPart(text=self._text)
        closed = message.model_copy(update={"status": status, "content": [part]})
        yield self._event(
            "response.output_text.done",
            item_id=message.id,
            output_index=index,
            content_index=0,
            text=self._text,
            logprobs=[],
        )
        yield self._event(
            "response.content_part.done",
            item_id=message.id,
            output_index=index,
            content_index=0,
            part=part.model_dump(mode="json"),
        )
        yield self._event("response.output_item.done", output_index=index, item=closed.model_dump(mode="json"))
        self._output.append(closed)
        self._message, self._text = None, ""

    def _close_streamed(self, calls: list[SplitCall]) -> Iterator[dict[str, Any]]:
        for call in calls:
            yield from self._close_call(call)

    def _open_call(self, started: CallStarted) -> Iterator[dict[str, Any]]:
        """A call item opened at the call's start; the text before it is a finished message."""
        if self._message is not None:
            yield from self._close_message("completed")
        if self._call is not None:
            # The call before this one closed its arguments before this one could start.
            yield from self._close_call(self._call)
        self._call = rt.OutputFunctionCall(
            call_id=started.call_id, name=started.name, arguments="", status="in_progress"
        )
        item = self._call.model_dump(mode="json")
        yield self._event("response.output_item.added", output_index=len(self._output), item=item)

    def _arguments_delta(self, text: str) -> Iterator[dict[str, Any]]:
        if self._call is None:
            return
        self._call = self._call.model_copy(update={"arguments": self._call.arguments + text})
        yield self._event(
            "response.function_call_arguments.delta",
            item_id=self._call.id,
            output_index=len(self._output),
            delta=text,
        )

    def _close_call(self, call: SplitCall | rt.OutputFunctionCall) -> Iterator[dict[str, Any]]:
        """The call's item done: opened and streamed already, or (sent whole) opened with all its arguments."""
        if call.call_id in self._closed:
            return
        self._closed.add(call.call_id)
        if isinstance(call, rt.OutputFunctionCall):
            done = call.model_copy(update={"status": "completed"})
        else:
            done = _function_call(call)
        index = len(self._output)
        if self._call is not None and self._call.call_id == call.call_id:
            done = done.model_copy(update={"id": self._call.id})
        else:
            opened = done.model_copy(update={"arguments": "", "status": "in_progress"})
            yield self._event("response.output_item.added", output_index=index, item=opened.model_dump(mode="json"))
            yield self._event(
                "response.function_call_arguments.delta", item_id=done.id, output_index=index, delta=done.arguments
            )
        self._call = None
        yield self._event(
            "response.function_call_arguments.done",
            item_id=done.id,
            output_index=index,
            name=done.name,
            arguments=done.arguments,
        )
        yield self._event("response.output_item.done", output_index=index, item=done.model_dump(mode="json"))
        self._output.append(done)

    def events(self, event: GenerationEvent) -> Iterator[dict[str, Any]]:
        if isinstance(event, TextPiece):
            for piece in self._splitter.feed(event.text) if self._splitter is not None else [event.text]:
                if isinstance(piece, CallStarted):
                    yield from self._open_call(piece)
                elif isinstance(piece, ArgumentsPiece):
                    yield from self._arguments_delta(piece.text)
                elif piece:
                    yield from self._delta(piece)
        elif isinstance(event, ChoiceFinished):
            self._reason = event.finish_reason
            calls: list[SplitCall] = []
            if self._splitter is not None:
                rest, calls = self._splitter.finish(cut_off=event.finish_reason == "length")
                streamed = [call for call in calls if call.streamed]
                if rest and streamed:
                    # Text after streamed calls (free text the call grammar allows): its own message item.
                    yield from self._close_streamed(streamed)
                    calls = [call for call in calls if not call.streamed]
                if rest:
                    yield from self._delta(rest)
            if self._message is not None or not self._output and not calls:
                yield from self._close_message(_status(event.finish_reason))
            for call in calls:
                yield from self._close_call(call)
        elif isinstance(event, GenerationDone):
            self.final = finished(self._shell, self._output, self._reason, event)
            kind = "response.incomplete" if self.final.status == "incomplete" else "response.completed"
            yield self._event(kind, response=self.final.model_dump(mode="json"))
