"""Splitting streamed model text into content and tool calls (pure; no server needed)."""

from __future__ import annotations

from edge_runtime.api.call_splitter import ArgumentsPiece, CallStarted, StreamingCallSplitter, split_whole
from edge_runtime.api.tool_use import ToolUse
from edge_runtime.engine.tool_calls import ToolSpec

WEATHER = ToolSpec(
    "get_weather",
    "weather of a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
USE = ToolUse(tools=(WEATHER,), fmt="generic", choice="auto", parallel=True, template_renders_tools=False)


def _stream(pieces: list[str]) -> tuple[str, str, list[str]]:
    splitter = StreamingCallSplitter(USE)
    streamed = "".join(piece for p in pieces for piece in splitter.feed(p) if isinstance(piece, str))
    rest, calls = splitter.finish()
    return streamed, rest, [c.name for c in calls if not c.failed]


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


def test_whole_text_split_returns_a_malformed_call_as_a_failed_call() -> None:
    good = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>'
    content, calls = split_whole(f"Sure.\n{good}", USE)
    assert content == "Sure." and [(c.name, c.arguments, c.failed) for c in calls] == [
        ("get_weather", '{"city": "Rome"}', False)
    ]
    assert calls[0].parsed is not None and calls[0].parsed.arguments == {"city": "Rome"}
    broken = '<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>'
    content, calls = split_whole(broken, USE)
    assert content == "" and [(c.name, c.arguments, c.failed) for c in calls] == [
        ("get_weather", '{"city": }', True)
    ]
    assert split_whole("plain", None) == ("plain", [])


CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Os\\"l}o", "days": [1, {"n": 2}]}}\n</tool_call>'


def _pieces(text: str, step: int) -> list[object]:
    splitter = StreamingCallSplitter(USE)
    pieces: list[object] = []
    for start in range(0, len(text), step):
        pieces.extend(splitter.feed(text[start : start + step]))
    rest, calls = splitter.finish()
    return [*pieces, rest, calls]


def test_arguments_stream_in_pieces_that_concatenate_to_the_call() -> None:
    for step in (1, 2, 5, len(CALL)):
        *pieces, rest, calls = _pieces(f"Ok. {CALL}\n{CALL.replace('Os', 'Be')}", step)
        starts = [p for p in pieces if isinstance(p, CallStarted)]
        assert [(s.position, s.name) for s in starts] == [(0, "get_weather"), (1, "get_weather")]
        arguments = ["".join(p.text for p in pieces if isinstance(p, ArgumentsPiece) and p.position == i) for i in (0, 1)]
        assert arguments == [c.arguments for c in calls] and all(c.streamed and not c.failed for c in calls)
        assert arguments[0] == '{"city": "Os\\"l}o", "days": [1, {"n": 2}]}' and rest == ""
        assert [s.call_id for s in starts] == [c.call_id for c in calls]
        if step == 1:
            assert sum(isinstance(p, ArgumentsPiece) for p in pieces) > 2


def test_a_repeated_call_is_held_back_and_ends_the_turn() -> None:
    *pieces, rest, calls = _pieces(f"{CALL}\n{CALL}\n{CALL.replace('Os', 'Be')}", 3)
    assert sum(isinstance(p, CallStarted) for p in pieces) == 1 and len(calls) == 1 and rest == ""


def test_a_call_cut_off_is_a_failed_call_with_its_partial_arguments() -> None:
    cut = CALL[: CALL.index("days")]
    content, calls = split_whole(f"Ok. {cut}", USE, cut_off=True)
    assert content == "Ok." and [(c.name, c.arguments, c.failed) for c in calls] == [
        ("get_weather", '{"city": "Os\\"l}o", "', True)
    ]
    content, calls = split_whole('Ok. <tool_call>\n{"name": "get_weather",', USE, cut_off=True)
    assert content == "Ok." and [(c.name, c.arguments) for c in calls] == [("get_weather", "")]
    assert split_whole('Ok. <tool_call>\n{"na', USE, cut_off=True) == ("Ok.", [])
