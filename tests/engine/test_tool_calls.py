"""Tool calls: choosing the call syntax, the system prompt, and parsing hand-written model outputs."""

from __future__ import annotations

import pytest

from edge_runtime.engine.chat_template import ChatTemplate
from edge_runtime.engine.tool_call_parsing import ParsedToolCall, parse_tool_calls
from edge_runtime.engine.tool_calls import (
    TOOL_FORMATS,
    ToolSpec,
    call_trigger,
    choose_format,
    format_tool_calls,
    tool_system_prompt,
)
from edge_runtime.errors import BadRequest

WEATHER = ToolSpec(
    "get_weather",
    "Current weather in a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)
CLOCK = ToolSpec("now", "The current time")
TOOLS = [WEATHER, CLOCK]


def calls_of(text: str, fmt: str) -> tuple[str, list[tuple[str, dict | None, str | None]]]:
    content, calls = parse_tool_calls(text, fmt, TOOLS)
    return content, [(c.name, c.arguments, c.error) for c in calls]


# ------------------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        (
            "json",
            (
                'Let me look.\n{"type": "function", "name": "get_weather", "parameters": {"city": "Paris"}}\n'
                '{"name": "now", "parameters": {}}'
            ),
        ),
        (
            "function_tag",
            'Let me look.\n<function=get_weather>{"city": "Paris"}</function>\n<function=now>{}</function>',
        ),
        ("python_list", 'Let me look.\n[get_weather(city="Paris"), now()]'),
        (
            "generic",
            (
                'Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
                '</tool_call>\n<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>'
            ),
        ),
    ],
)
def test_several_calls_after_text(fmt: str, text: str) -> None:
    assert calls_of(text, fmt) == (
        "Let me look.",
        [("get_weather", {"city": "Paris"}, None), ("now", {}, None)],
    )


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("json", 'Use {"name": "get_stock", "parameters": {"s": "X"}} maybe'),
        ("function_tag", 'Use <function=get_stock>{"s": "X"}</function> maybe'),
        ("python_list", 'Use [get_stock(s="X")] maybe'),
        ("generic", 'Use <tool_call>\n{"name": "get_stock", "arguments": {"s": "X"}}\n</tool_call> maybe'),
    ],
)
def test_a_name_that_is_not_a_tool_is_not_a_call(fmt: str, text: str) -> None:
    assert calls_of(text, fmt) == (text, [])


@pytest.mark.parametrize(
    ("fmt", "text", "error"),
    [
        ("json", '{"name": "get_weather", "parameters": {"city": "Par', "not valid JSON"),
        ("json", '{"name": "get_weather", "parameters": [1, 2]}', "not a JSON object"),
        ("json", '{"name": "get_weather"}', "no parameters"),
        ("function_tag", "<function=get_weather>{city: Paris}</function>", "not valid JSON"),
        ("function_tag", "<function=get_weather>[1]</function>", "not a JSON object"),
        ("python_list", '[get_weather(city="Pa', "not valid Python"),
        ("python_list", '[get_weather("Paris")]', "positional"),
        ("python_list", '[get_weather(city=open("/etc/passwd").read())]', "not a literal"),
        ("python_list", "[get_weather(**{'city': 'x'})]", "**arguments"),
        (
            "generic",
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>',
            "not valid JSON",
        ),
        (
            "generic",
            '<tool_call>\n{"name": "get_weather", "arguments": "{oops"}\n</tool_call>',
            "not valid JSON",
        ),
    ],
)
def test_malformed_arguments_give_a_failed_call_with_its_raw_text(fmt: str, text: str, error: str) -> None:
    content, calls = parse_tool_calls(text, fmt, TOOLS)
    assert content == ""
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and call.arguments is None
    assert call.error is not None and error in call.error
    assert call.raw in text and call.raw.strip() == call.raw and call.raw


def test_arguments_sent_as_a_json_string_are_read() -> None:
    text = '{"name": "get_weather", "parameters": "{\\"city\\": \\"Oslo\\"}"}'
    assert calls_of(text, "json") == ("", [("get_weather", {"city": "Oslo"}, None)])


def test_python_list_reads_literals_only_and_json_spellings() -> None:
    text = '[get_weather(city="a]b", days=-2, extra={"x": [true, null, 1.5]}, flag=False)]'
    assert calls_of(text, "python_list") == (
        "",
        [
            (
                "get_weather",
                {"city": "a]b", "days": -2, "extra": {"x": [True, None, 1.5]}, "flag": False},
                None,
            )
        ],
    )
    assert calls_of("numbers [1, 2] stay", "python_list") == ("numbers [1, 2] stay", [])


def test_a_list_with_any_unknown_name_stays_text() -> None:
    text = '[get_weather(city="x"), get_stock(s="y")]'
    assert calls_of(text, "python_list") == (text, [])


def test_json_call_inside_a_call_is_not_a_second_call() -> None:
    text = '{"name": "get_weather", "parameters": {"city": {"name": "now", "parameters": {}}}}'
    content, calls = calls_of(text, "json")
    assert content == "" and [c[0] for c in calls] == ["get_weather"]


def test_unterminated_tags_at_the_end_still_parse() -> None:
    assert calls_of("<function=now>{}", "function_tag") == ("", [("now", {}, None)])
    assert calls_of('<tool_call>\n{"name": "now", "arguments": {}}', "generic") == ("", [("now", {}, None)])


def test_llama_python_tag_is_not_content() -> None:
    assert calls_of('<|python_tag|>{"name": "now", "parameters": {}}', "json") == ("", [("now", {}, None)])


def test_call_ids_are_unique() -> None:
    _, calls = parse_tool_calls('[now(), get_weather(city="Oslo")]', "python_list", TOOLS)
    assert len({c.call_id for c in calls}) == 2
    assert all(isinstance(c, ParsedToolCall) and c.call_id.startswith("call_") for c in calls)


# ------------------------------------------------------------------------------------------------ writing


@pytest.mark.parametrize("fmt", TOOL_FORMATS)
def test_written_calls_parse_back_and_start_with_the_trigger(fmt: str) -> None:
    calls = [("get_weather", {"city": 'Zürich "old" town', "days": 3}), ("now", {})]
    written = format_tool_calls(calls, fmt)
    assert written.startswith(call_trigger(fmt))
    assert calls_of(written, fmt) == (
        "",
        [("get_weather", {"city": 'Zürich "old" town', "days": 3}, None), ("now", {}, None)],
    )


def test_generic_form_is_what_the_builtin_templates_write() -> None:
    history = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                }
            ],
        },
    ]
    rendered = ChatTemplate.builtin("chatml").render(history, add_generation_prompt=False)
    assert format_tool_calls([("get_weather", {"city": "Oslo"})], "generic") in rendered


def test_formats_are_checked() -> None:
    with pytest.raises(BadRequest, match="unknown tool prompt format 'xml'"):
        format_tool_calls([("now", {})], "xml")
    with pytest.raises(BadRequest):
        parse_tool_calls("x", "xml", TOOLS)


# ------------------------------------------------------------------------------------------------ choosing


@pytest.mark.parametrize(
    ("architecture", "name", "expected"),
    [
        ("llama", "Meta-Llama-3.1-8B-Instruct", "json"),
        ("llama", "Llama-3-1-8b", "json"),
        ("llama", "Meta-Llama-3-8B-Instruct", "json"),
        ("llama", "Llama-3.2-1B-Instruct", "python_list"),
        ("llama", "llama3_3-70b", "python_list"),
        ("llama4", "Llama-4-Scout-17B", "python_list"),
        ("gemma3", "gemma-3-270m", "generic"),
        ("qwen2", "Qwen2.5-0.5B-Instruct", "generic"),
        ("llama", "tiny", "generic"),
    ],
)
def test_choose_format_by_model_name(architecture: str, name: str, expected: str) -> None:
    assert choose_format(architecture, name, None) == expected


def test_choose_format_from_templates_and_requests() -> None:
    hermes = "{% if tools %}{% for t in tools %}{{ t | tojson }}{% endfor %}<tool_call>{% endif %}"
    function_tag = "{% if tools %}<function=name>{% endif %}"
    llama = "{% if tools %}{{ tools | tojson }}{% endif %}<|start_header_id|>"
    assert choose_format("qwen2", hermes, None) == "generic"
    assert choose_format("llama", function_tag, None) == "function_tag"
    assert choose_format("llama", llama, None) == "json"
    assert choose_format("llama", ChatTemplate.builtin("llama3").source, None) == "json"
    assert choose_format("gemma3", ChatTemplate.builtin("gemma").source, None) == "generic"
    assert choose_format("gemma3", "gemma", "function_tag") == "function_tag"
    with pytest.raises(BadRequest):
        choose_format("gemma3", "gemma", "yaml")


# ------------------------------------------------------------------------------------------------ prompting


def test_generic_prompt_lists_every_tool_and_the_call_form() -> None:
    prompt = tool_system_prompt(TOOLS, "generic")
    assert '"name": "get_weather"' in prompt and '"name": "now"' in prompt
    assert '"required": ["city"]' in prompt
    assert '<tool_call>\n{"name": "<function name>", "arguments"' in prompt


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [
        ("json", '{"type": "function", "name": "<function name>", "parameters"'),
        ("function_tag", "<function=function_name>"),
        ("python_list", "[function_name1(argument1=value1"),
    ],
)
def test_llama_prompts_show_their_syntax(fmt: str, marker: str) -> None:
    prompt = tool_system_prompt(TOOLS, fmt)
    assert marker in prompt
    assert "get_weather" in prompt and "Current weather in a city" in prompt


def test_append_puts_the_system_text_after_the_tools() -> None:
    prompt = tool_system_prompt(TOOLS, "python_list", system_text="Be brief.")
    assert prompt.endswith("\n\nBe brief.")
    assert prompt.index("get_weather") < prompt.index("Be brief.")


def test_replace_fills_the_function_description_slot() -> None:
    prompt = tool_system_prompt(
        TOOLS, "python_list", behavior="replace", system_text="You are Ada.\n{{function_description}}\nBye."
    )
    assert prompt.startswith("You are Ada.\n")
    assert prompt.endswith("\nBye.")
    assert "expert at composing" in prompt and '"name": "now"' in prompt
    without_slot = tool_system_prompt(TOOLS, "json", behavior="replace", system_text="You are Ada.")
    assert without_slot.startswith("You are Ada.\n\n") and "get_weather" in without_slot
    assert tool_system_prompt(TOOLS, "json", behavior="replace") == tool_system_prompt(TOOLS, "json")


def test_tool_choice_instructions() -> None:
    assert "MUST call one or more" in tool_system_prompt(TOOLS, "generic", tool_choice="required")
    assert tool_system_prompt(TOOLS, "generic", tool_choice="now").endswith(
        "You MUST call the function `now` to answer the user."
    )
    with pytest.raises(BadRequest, match="not among the tools"):
        tool_system_prompt(TOOLS, "generic", tool_choice="get_stock")
    with pytest.raises(BadRequest):
        tool_system_prompt(TOOLS, "generic", tool_choice="none")
    with pytest.raises(BadRequest):
        tool_system_prompt([], "generic")


# ------------------------------------------------------------------------------------------------ specs


def test_tool_spec_from_llama_stack_param_definitions() -> None:
    spec = ToolSpec.from_param_definitions(
        "search",
        None,
        {
            "query": {"param_type": "str", "description": "what to look for"},
            "limit": {"param_type": "int", "required": False, "default": 5},
            "when": {"param_type": "datetime", "required": False},
        },
    )
    assert spec.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "what to look for"},
            "limit": {"type": "integer", "default": 5},
            "when": {"description": "(datetime)"},
        },
        "required": ["query"],
    }
    assert spec.as_function()["function"]["name"] == "search"
    with pytest.raises(BadRequest):
        ToolSpec(" ")


@pytest.mark.parametrize("fmt", TOOL_FORMATS)
def test_a_repeated_identical_call_ends_the_turn(fmt: str) -> None:
    """A small model that repeats a call would fill its turn with copies: the first repeat ends the turn."""
    oslo, paris = ("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Paris"})
    text = format_tool_calls([oslo, paris, oslo, ("now", {})], fmt)
    content, calls = calls_of(text, fmt)
    assert content == "" and calls == [(*oslo, None), (*paris, None)]
