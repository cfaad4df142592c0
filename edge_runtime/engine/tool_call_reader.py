"""An incremental view of one tool call while the model is still writing it: the tool's name once it is
written, then the arguments text as it grows, and whether the arguments are closed.

The server streams arguments from it as they are generated (as OpenAI does), and returns a call cut off by
max_tokens as a call with the partial arguments written so far. The formats whose arguments are JSON text
(`generic`, `json`, `function_tag`) are read incrementally; `python_list` writes Python keyword arguments,
not JSON, so it has no incremental view (`reads_incrementally` is False) and its calls are sent whole."""

from __future__ import annotations

import json
import re

from edge_runtime.engine.tool_calls import ToolFormat

_NAME = r'"((?:[^"\\]|\\.)*)"'
_OPENINGS: dict[ToolFormat, re.Pattern[str]] = {
    "generic": re.compile(r"<tool_call>\s*\{\s*\"name\"\s*:\s*" + _NAME + r'\s*,\s*"(?:arguments|parameters)"\s*:'),
    "json": re.compile(
        r'\{\s*(?:"type"\s*:\s*"function"\s*,\s*)?"name"\s*:\s*' + _NAME + r'\s*,\s*"(?:parameters|arguments)"\s*:'
    ),
    "function_tag": re.compile(r"<function=([^>\s]+)>"),
}
"""Each format's text from the call's first character up to where its arguments value starts."""


def reads_incrementally(fmt: ToolFormat) -> bool:
    return fmt in _OPENINGS


def _decoded_name(fmt: ToolFormat, written: str) -> str | None:
    if fmt == "function_tag":
        return written
    try:
        name = json.loads(f'"{written}"')
    except json.JSONDecodeError:
        return None
    return name if isinstance(name, str) else None


class CallReader:
    """Reads one call from its first character (the format's call trigger) as text arrives.

    `name` is set once the opening names a tool among `names`; `unknown` once it names another (then the
    text is not a call). `arguments` is the arguments value's text so far, without leading whitespace;
    `complete` turns true when that JSON value closes, and `end` is then its end in the call's text."""

    def __init__(self, fmt: ToolFormat, names: set[str]) -> None:
        self._opening = _OPENINGS.get(fmt)
        self._fmt = fmt
        self._names = names
        self._text = ""
        self._position = 0
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self.name: str | None = None
        self.unknown = False
        self.arguments = ""
        self.complete = False
        self.end: int | None = None

    @property
    def text(self) -> str:
        """Everything fed so far: the call's own text and whatever followed it."""
        return self._text

    def feed(self, text: str) -> str:
        """The arguments text that `text` adds (empty until the name is known, and after the value closed)."""
        self._text += text
        if self._opening is None or self.unknown or self.complete:
            return ""
        if self.name is None:
            match = self._opening.match(self._text)
            if match is None:
                return ""
            name = _decoded_name(self._fmt, match.group(1))
            if name is None or name not in self._names:
                self.unknown = True
                return ""
            self.name = name
            self._position = match.end()
        return self._scan()

    def _scan(self) -> str:
        start = self._position
        text = self._text
        while self._position < len(text) and not self.complete:
            char = text[self._position]
            self._position += 1
            if not self.arguments and start == self._position - 1 and char.isspace():
                start = self._position
                continue
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
                if self._depth <= 0:
                    self.complete = True
                    self.end = self._position
        piece = text[start : self._position]
        self.arguments += piece
        return piece
