"""Client-supplied values made safe to print in a log line: one helper for every log call that repeats what a
client sent (path, model name, `user`, ignored keys), so no request can forge lines or fields, or make one line
huge; and a formatter that keeps every message on one line, whatever a log call forgot."""

from __future__ import annotations

import logging
from collections.abc import Sequence

VALUE_LIMIT = 200
"""Characters of one client value a log line repeats; the rest is counted, not printed."""
LIST_LIMIT = 20
"""Items of a client list a log line repeats; the rest is counted, not printed."""

_QUOTE_WHEN = frozenset(' ="')


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char == '"':
        return '\\"'
    if char.isprintable():
        return char
    return char.encode("unicode_escape").decode("ascii")


def escape_unprintable(text: str) -> str:
    """Unprintable characters (newlines, escapes, U+2028...) as Python escapes; the rest unchanged."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def loggable(value: object, limit: int = VALUE_LIMIT) -> str:
    """`value` as one `key=value` token: control and other unprintable characters escaped (`\\n`, `\\x1b`,
    `\\u2028`), at most `limit` characters kept, and quoted (logfmt style) when it holds a space, `=` or `"`."""
    text = value if isinstance(value, str) else str(value)
    over = len(text) - limit
    kept = text[:limit] if over > 0 else text
    if kept.isprintable() and "\\" not in kept and not _QUOTE_WHEN.intersection(kept) and kept and over <= 0:
        return kept
    escaped = "".join(_escape(char) for char in kept)
    if over > 0:
        escaped += f"... ({over} more characters)"
    return f'"{escaped}"'


def loggable_list(values: Sequence[object], limit: int = LIST_LIMIT) -> str:
    """The first `limit` values, each `loggable`, comma-separated, then `and N more`."""
    shown = ", ".join(loggable(value) for value in values[:limit])
    hidden = len(values) - limit
    return f"{shown} and {hidden} more" if hidden > 0 else shown


class OneLineFormatter(logging.Formatter):
    """Escapes unprintable characters in each formatted message, so one record is one line (a traceback,
    added after the message, keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_unprintable(super().formatMessage(record))
