"""Splitting streamed model text into content and tool calls (pure; no server needed)."""

from __future__ import annotations

from edge_runtime.api.tool_use import StreamingCallSplitter, ToolUse, content_and_calls
from edge_runtime.engine.tool_calls import ToolSpec

WEATHER = ToolSpec(
    "get_weather",
    "weather of a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
USE = ToolUse(tools=(WEATHER,), fmt="generic", choice="auto", parallel=True, template_renders_tools=False)


def _stream(pieces: list[str]) -> tuple[str, str, list[str]]:
    splitter = StreamingCallSplitter(USE)
    streamed = "".join(splitter.feed(p) for p in pieces)
    rest, calls = splitter.finish()
    return streamed, rest, [c.name for c in calls if c.error is None]


def test_text_before_a_call_streams_and_the_call_is_held_back() -> None:
    pieces = [
        "Let me ",
        "check. <to",
        'ol_call>\n{"name": "get_weather", ',
        '"arguments": {"city": "Oslo"}}\n',
        "</tool_call>",
    ]
    streamed, rest, calls = _stream(pieces)
    assert streamed == "Let me check. " and calls == ["get_weather"] and rest == ""


def test_a_partial_trigger_that_never_completes_is_released() -> None:
    streamed, rest, calls = _stream(["a <to", "day b"])
    assert streamed == "a <today b" and rest == "" and calls == []
    streamed, rest, calls = _stream(["ends with <tool"])
    assert streamed + rest == "ends with <tool" and calls == []


def test_whole_text_split_keeps_failed_calls_as_text() -> None:
    good = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>'
    content, calls = content_and_calls(f"Sure.\n{good}", USE)
    assert content == "Sure." and [(c.name, c.arguments) for c in calls] == [
        ("get_weather", {"city": "Rome"})
    ]
    broken = '<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>'
    content, calls = content_and_calls(broken, USE)
    assert calls == [] and "get_weather" in content
    assert content_and_calls("plain", None) == ("plain", [])
