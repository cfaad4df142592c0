"""Splitting a chat model's output into content and tool calls, as it streams or whole (one path for both, so
a streamed answer and a whole one agree).

A call cut off by max_tokens is returned as what it is, never as our call syntax in the content, and the
finish reason says the turn was cut (length / out_of_tokens) even when other calls parsed:
- OpenAI chat: a tool call whose `arguments` is the partial JSON text written so far, as OpenAI itself
  returns truncated arguments with finish_reason "length"; `content` holds only real text.
- Llama Stack native: a ToolCall whose `arguments` is that partial text (the wire type allows a string);
  streamed, a `failed` tool_call delta carrying it (Llama Stack's word for a call that did not parse).
- Responses: a function_call item with status "incomplete".
A call streamed already whose arguments then fail to parse stays a call too: what went out cannot be taken
back. An opening cut before the tool's name is complete is no call at all and is dropped."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from edge_runtime.api.tool_use import ToolUse
from edge_runtime.engine.tool_call_parsing import ParsedToolCall, new_call_id, parse_tool_calls
from edge_runtime.engine.tool_call_reader import CallReader, reads_incrementally
from edge_runtime.engine.tool_calls import call_trigger


@dataclass(frozen=True)
class CallStarted:
    """A call's first stream piece: its position among the turn's calls, id and tool name."""

    position: int
    call_id: str
    name: str


@dataclass(frozen=True)
class ArgumentsPiece:
    """More of the arguments text of the call at `position`."""

    position: int
    text: str


StreamPiece = str | CallStarted | ArgumentsPiece
"""Content text, or a call starting, or a piece of its arguments."""


@dataclass(frozen=True)
class SplitCall:
    """A call as the routes return it. `arguments` is its arguments text (the whole JSON, or the partial text
    of a call cut off); `parsed` holds the arguments object when they parsed (else None); `streamed`: its
    start and arguments already went out as pieces."""

    call_id: str
    name: str
    arguments: str
    parsed: ParsedToolCall | None
    streamed: bool

    @property
    def failed(self) -> bool:
        """Its arguments did not parse: cut off by max_tokens, or (without a grammar) malformed."""
        return self.parsed is None


@dataclass
class _Reading:
    offset: int
    """Where the call starts in the held text."""
    reader: CallReader
    call_id: str = field(default_factory=new_call_id)
    announced: bool = False
    sent: int = 0
    """How much of the arguments text went out as pieces."""

    @property
    def done(self) -> bool:
        return self.reader.complete or self.reader.unknown


class StreamingCallSplitter:
    """Streams text until a call may be starting; from then on streams each call's start and arguments as
    the model writes them (formats with JSON arguments; python_list calls go out whole at the end), and
    parses the held text when the choice ends.

    Text is emitted up to the first occurrence of the call trigger, keeping back any tail that could still
    grow into the trigger. A call whose arguments so far repeat an earlier call of the same tool is held
    back: when it closes identical, it is the repeat that ends the turn and never goes out."""

    def __init__(self, use: ToolUse) -> None:
        self._use = use
        self._trigger = call_trigger(use.fmt)
        self._names = {tool.name for tool in use.tools}
        self._incremental = reads_incrementally(use.fmt)
        self._pending = ""
        self._held: str | None = None
        self._search_from = 0
        self._readings: list[_Reading] = []
        self._ended = False

    def feed(self, text: str) -> list[StreamPiece]:
        if self._held is not None:
            self._held += text
            return self._read_calls(text)
        self._pending += text
        found = self._pending.find(self._trigger)
        if found >= 0:
            emit, self._held, self._pending = self._pending[:found], self._pending[found:], ""
            return ([emit] if emit else []) + self._read_calls(None)
        keep = _longest_trigger_prefix_suffix(self._pending, self._trigger)
        emit = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(self._pending) - keep :]
        return [emit] if emit else []

    def _announced(self) -> list[_Reading]:
        return [r for r in self._readings if r.announced]

    def _read_calls(self, text: str | None) -> list[StreamPiece]:
        """Feed the open call's reader; when it is done, start a reader on the next call in the held text."""
        if not self._incremental:
            return []
        held = self._held or ""
        pieces: list[StreamPiece] = []
        current = self._readings[-1] if self._readings else None
        if current is not None and text is not None and not current.done:
            current.reader.feed(text)
            pieces.extend(self._pieces_of(current))
        while not self._ended and (current is None or current.done):
            if current is not None:
                end = current.reader.end
                self._search_from = current.offset + (end if end is not None else len(self._trigger))
            found = held.find(self._trigger, self._search_from)
            if found < 0:
                break
            current = _Reading(found, CallReader(self._use.fmt, self._names))
            self._readings.append(current)
            current.reader.feed(held[found:])
            pieces.extend(self._pieces_of(current))
        return pieces

    def _pieces_of(self, reading: _Reading) -> list[StreamPiece]:
        reader = reading.reader
        if reader.name is None:
            return []
        announced = self._announced()
        if reading.announced:
            new, reading.sent = reader.arguments[reading.sent :], len(reader.arguments)
            return [ArgumentsPiece(len(announced) - 1, new)] if new else []
        earlier = [r.reader.arguments for r in announced if r.reader.name == reader.name]
        if any(e.startswith(reader.arguments) for e in earlier):
            if reader.complete and reader.arguments in earlier:
                self._ended = True
            return []
        reading.announced, reading.sent = True, len(reader.arguments)
        started = CallStarted(len(announced), reading.call_id, reader.name)
        return [started, ArgumentsPiece(len(announced), reader.arguments)] if reader.arguments else [started]

    def finish(self, cut_off: bool = False) -> tuple[str, list[SplitCall]]:
        """The held text that is not a call, and every call of the turn in order (those already streamed
        first). `cut_off`: the choice ended at max_tokens, so a call left open is a cut-off call."""
        if self._held is None:
            # What is kept back is the start of a call trigger: cut off, it is our syntax, not text.
            rest, self._pending = ("" if cut_off else self._pending), ""
            return rest, []
        held, self._held = self._held, None
        content, parsed = parse_tool_calls(held, self._use.fmt, self._use.tools)
        announced = self._announced()
        calls: list[SplitCall] = []
        raw_failures: list[str] = []
        for index in range(max(len(parsed), len(announced))):
            call = parsed[index] if index < len(parsed) else None
            good = call if call is not None and call.error is None else None
            if index < len(announced):
                reading = announced[index]
                name = reading.reader.name or ""
                good = good or _closed_arguments(reading, call)
                calls.append(SplitCall(reading.call_id, name, reading.reader.arguments, good, True))
            elif call is not None and good is not None:
                calls.append(SplitCall(call.call_id, call.name, _arguments_text(call), good, False))
            elif call is not None and cut_off and index == len(parsed) - 1:
                calls.append(SplitCall(call.call_id, call.name, _partial_arguments(call), None, False))
            elif call is not None:
                raw_failures.append(call.raw)
        if cut_off:
            content = self._without_open_call(content)
        return "\n".join(part for part in [content, *raw_failures] if part), calls

    def _without_open_call(self, content: str) -> str:
        """Content without a call opening cut off before its name was complete (our syntax, not text)."""
        last = self._readings[-1] if self._readings else None
        if last is not None and last.reader.name is None and not last.reader.unknown:
            opening = last.reader.text.strip()
            if opening and content.endswith(opening):
                return content[: -len(opening)].rstrip()
        at = content.rfind(self._trigger)
        if not self._incremental and at >= 0:
            written = content[at + len(self._trigger) :].strip()
            if any(name.startswith(written) for name in self._names):
                return content[:at].rstrip()
        return content


def _closed_arguments(reading: _Reading, call: ParsedToolCall | None) -> ParsedToolCall | None:
    """A call whose arguments closed is whole even when max_tokens cut its wrapper (`}` or `</tool_call>`):
    the wrapper is our syntax, the arguments are the call."""
    reader = reading.reader
    if not reader.complete or reader.name is None:
        return None
    try:
        arguments = json.JSONDecoder(strict=False).decode(reader.arguments)
    except json.JSONDecodeError:
        return None
    if not isinstance(arguments, dict):
        return None
    raw = call.raw if call is not None else reader.text
    return ParsedToolCall(reading.call_id, reader.name, arguments, raw)


def _arguments_text(call: ParsedToolCall) -> str:
    return json.dumps(call.arguments or {}, ensure_ascii=False)


def _partial_arguments(call: ParsedToolCall) -> str:
    """A cut-off call the readers could not follow (python_list, or an opening in another shape): its raw
    text after the tool's name."""
    at = call.raw.find(call.name)
    return call.raw[at + len(call.name) :].lstrip("(>\": ,") if at >= 0 else call.raw


def _longest_trigger_prefix_suffix(text: str, trigger: str) -> int:
    for size in range(min(len(trigger) - 1, len(text)), 0, -1):
        if text.endswith(trigger[:size]):
            return size
    return 0


def split_whole(text: str, use: ToolUse | None, cut_off: bool = False) -> tuple[str, list[SplitCall]]:
    """A whole generation's content and calls, split exactly as a stream of it would be."""
    if use is None:
        return text, []
    splitter = StreamingCallSplitter(use)
    content = "".join(piece for piece in splitter.feed(text) if isinstance(piece, str))
    rest, calls = splitter.finish(cut_off)
    return (content + rest).strip(), calls
