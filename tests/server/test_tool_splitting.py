"""Splitting streamed model text into content and tool calls (pure; no server needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge_runtime.api import openai_types as ot
from edge_runtime.api import translate_native as tn
from edge_runtime.api import translate_openai_chat as to
from edge_runtime.api.call_splitter import ArgumentsPiece, CallStarted, StreamingCallSplitter, split_whole
from edge_runtime.api.generation import ChoiceResult, GenerationResult
from edge_runtime.api.tool_use import ToolUse
from edge_runtime.engine.tool_calls import ToolFormat, ToolSpec
from edge_runtime.engine.types import ChoiceFinished, FinishReason, GenerationDone

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


def _result(text: str, reason: FinishReason) -> GenerationResult:
    done = GenerationDone([ChoiceFinished(0, reason, text, [], 0.0)], 1, 1, 0, 0.0, 0.0)
    return GenerationResult([ChoiceResult(0, text, finish_reason=reason)], done)


def test_max_tokens_wins_over_calls_that_parsed() -> None:
    """Cut by max_tokens after a whole call (say inside the closing tag): the call is there, and the finish
    reason still says the turn was cut (Llama Stack maps length to out_of_tokens)."""
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool'
    request = ot.ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}])
    choice = to.chat_response(request, _result(text, "length"), USE).choices[0]
    assert choice.finish_reason == "length" and choice.message.content is None
    assert [c.function.name for c in choice.message.tool_calls or []] == ["get_weather"]
    message = tn.chat_response(_result(text, "length"), None, USE).completion_message
    assert message.stop_reason == "out_of_tokens" and [c.arguments for c in message.tool_calls] == [{"city": "Rome"}]
    whole = text + "_call>"
    assert to.chat_response(request, _result(whole, "stop"), USE).choices[0].finish_reason == "tool_calls"
    assert tn.chat_response(_result(whole, "stop"), None, USE).completion_message.stop_reason == "end_of_message"


@pytest.mark.parametrize(
    ("fmt", "call"),
    [
        ("json", '{"type": "function", "name": "get_weather", "parameters": {"city": "Oslo"}}'),
        ("function_tag", '<function=get_weather>{"city": "Oslo"}</function>'),
    ],
)
def test_llama3_json_formats_stream_their_arguments_too(fmt: ToolFormat, call: str) -> None:
    use = replace(USE, fmt=fmt)
    splitter = StreamingCallSplitter(use)
    pieces = [piece for char in call for piece in splitter.feed(char)]
    rest, calls = splitter.finish()
    assert [p.name for p in pieces if isinstance(p, CallStarted)] == ["get_weather"]
    assert "".join(p.text for p in pieces if isinstance(p, ArgumentsPiece)) == '{"city": "Oslo"}'
    assert rest == "" and [(c.arguments, c.streamed, c.failed) for c in calls] == [('{"city": "Oslo"}', True, False)]


def test_python_list_calls_go_out_whole_and_a_cut_one_is_still_a_call() -> None:
    use = replace(USE, fmt="python_list")
    splitter = StreamingCallSplitter(use)
    pieces = [piece for char in '[get_weather(city="Oslo")]' for piece in splitter.feed(char)]
    rest, calls = splitter.finish()
    assert pieces == [] and rest == ""
    assert [(c.arguments, c.streamed) for c in calls] == [('{"city": "Oslo"}', False)]
    content, calls = split_whole('[get_weather(city="Os', use, cut_off=True)
    assert content == "" and [(c.name, c.failed) for c in calls] == [("get_weather", True)]
    assert split_whole("[get_wea", use, cut_off=True) == ("", [])
