"""Chat templates: built-ins render each family's exact format; GGUF templates render as Hugging Face does."""

from __future__ import annotations

from datetime import datetime

import pytest

from edge_runtime.engine.chat_template import ChatTemplate, ChatTemplateError
from edge_runtime.errors import BadRequest

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "What is 2+2?"},
]

# A ChatML template with tools in the style published with Hugging Face models (Hermes / Qwen 2.5 shape).
CHATML_WITH_TOOLS = r"""
{%- if tools %}
{{- '<|im_start|>system\n' }}
{%- if messages[0]['role'] == 'system' %}
{{- messages[0]['content'] }}
{%- else %}
{{- 'You are a helpful assistant.' }}
{%- endif %}
{{- "\n\n# Tools\n\n<tools>" }}
{%- for tool in tools %}
{{- "\n" }}
{{- tool | tojson }}
{%- endfor %}
{{- "\n</tools><|im_end|>\n" }}
{%- else %}
{%- if messages[0]['role'] == 'system' %}
{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- endif %}
{%- endif %}
{%- for message in messages %}
{%- if message.role == 'system' and loop.first %}
{%- continue %}
{%- endif %}
{%- if message.role == 'assistant' and message.tool_calls %}
{{- '<|im_start|>assistant' }}
{%- if message.content %}{{- '\n' + message.content }}{%- endif %}
{%- for tool_call in message.tool_calls %}
{{- '\n<tool_call>\n{"name": "' + tool_call.function.name + '", "arguments": ' }}
{{- tool_call.function.arguments | tojson }}
{{- '}\n</tool_call>' }}
{%- endfor %}
{{- '<|im_end|>\n' }}
{%- elif message.role == 'tool' %}
{{- '<|im_start|>user\n<tool_response>\n' + message.content + '\n</tool_response><|im_end|>\n' }}
{%- else %}
{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city — °C",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_gemma_folds_the_system_turn_into_the_first_user_turn() -> None:
    template = ChatTemplate.for_model(gguf_template=None, architecture="gemma3")
    assert template.origin == "builtin" and template.family == "gemma"
    assert template.render(CONVERSATION, bos_token="<bos>") == (
        "<bos><start_of_turn>user\nYou are terse.\n\nHi there<end_of_turn>\n"
        "<start_of_turn>model\nHello.<end_of_turn>\n"
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert template.stop_strings == ("<end_of_turn>",)


def test_llama3_uses_header_ids() -> None:
    template = ChatTemplate.for_model(gguf_template=None, architecture="llama")
    assert template.family == "llama3"
    assert template.render(CONVERSATION, bos_token="<|begin_of_text|>") == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert "<|eot_id|>" in template.stop_strings


def test_chatml_is_the_default_for_qwen_and_unknown_architectures() -> None:
    expected = (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n"
        "<|im_start|>assistant\nHello.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    for architecture in ("qwen2", "qwen3", "some-new-arch"):
        template = ChatTemplate.for_model(gguf_template=None, architecture=architecture)
        assert template.family == "chatml"
        assert template.render(CONVERSATION) == expected
        assert template.stop_strings == ("<|im_end|>",)


@pytest.mark.parametrize(
    ("name", "prompt_tail"),
    [
        ("gemma", "<start_of_turn>model\n"),
        ("llama3", "<|start_header_id|>assistant<|end_header_id|>\n\n"),
        ("chatml", "<|im_start|>assistant\n"),
    ],
)
def test_add_generation_prompt_adds_only_the_assistant_header(name: str, prompt_tail: str) -> None:
    template = ChatTemplate.builtin(name)
    with_prompt = template.render(CONVERSATION)
    without = template.render(CONVERSATION, add_generation_prompt=False)
    assert with_prompt == without + prompt_tail


def test_builtins_render_tool_calls_and_results_in_the_generic_form() -> None:
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "18C"},
    ]
    assert ChatTemplate.builtin("chatml").render(history, add_generation_prompt=False) == (
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n"
    )
    assert "<|start_header_id|>ipython<|end_header_id|>\n\n18C<|eot_id|>" in ChatTemplate.builtin(
        "llama3"
    ).render(history)


def test_precedence_override_then_gguf_then_builtin() -> None:
    gguf = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
    assert ChatTemplate.for_model(gguf_template=gguf, architecture="gemma3").origin == "gguf"
    assert ChatTemplate.for_model(gguf_template="  ", architecture="gemma3").family == "gemma"
    by_name = ChatTemplate.for_model(gguf_template=gguf, architecture="gemma3", override="llama3")
    assert (by_name.origin, by_name.family) == ("builtin", "llama3")
    by_text = ChatTemplate.for_model(
        gguf_template=gguf, architecture="gemma3", override="<{{ messages|length }}>"
    )
    assert by_text.origin == "override"
    assert by_text.render(CONVERSATION) == "<4>"
    with pytest.raises(ChatTemplateError):
        ChatTemplate.for_model(gguf_template=None, architecture="llama", override="")


def test_gguf_template_family_comes_from_its_end_of_turn_marker() -> None:
    template = ChatTemplate.for_model(gguf_template=CHATML_WITH_TOOLS, architecture="llama")
    assert template.family == "chatml"
    assert template.stop_strings == ("<|im_end|>",)
    assert ChatTemplate.for_model(gguf_template="{{ messages }}", architecture="llama").stop_strings == ()


def test_hf_chatml_template_with_tools_renders_the_tool_schemas() -> None:
    template = ChatTemplate.for_model(gguf_template=CHATML_WITH_TOOLS, architecture="qwen2")
    assert template.supports_tools
    text = template.render(CONVERSATION, tools=[WEATHER_TOOL])
    assert text.startswith("<|im_start|>system\nYou are terse.\n\n# Tools\n\n<tools>\n{")
    # HF's tojson: no HTML escaping, non-ASCII kept, JSON spacing of json.dumps.
    assert '"description": "Weather in a city — °C"' in text
    assert "<|im_start|>system\nYou are terse.<|im_end|>" not in text
    assert text.endswith("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    without_tools = template.render(CONVERSATION)
    assert without_tools.startswith(
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi there"
    )


def test_tools_on_a_template_without_tools_are_refused_not_dropped() -> None:
    template = ChatTemplate.builtin("gemma")
    assert not template.supports_tools
    with pytest.raises(ChatTemplateError, match="does not render tools"):
        template.render(CONVERSATION, tools=[WEATHER_TOOL])


def test_list_contents_are_joined_for_string_templates_and_kept_for_typed_ones() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]
    assert ChatTemplate.builtin("chatml").render(parts, add_generation_prompt=False) == (
        "<|im_start|>user\none\ntwo<|im_end|>\n"
    )
    typed = ChatTemplate.for_model(
        gguf_template="{% for m in messages %}{% for p in m.content %}({{ p.text }}){% endfor %}{% endfor %}",
        architecture="llama",
    )
    assert typed.render(parts) == "(one)(two)"
    image = [{"role": "user", "content": [{"type": "image", "image": {"url": {"uri": "x"}}}]}]
    with pytest.raises(ChatTemplateError, match="text parts only"):
        ChatTemplate.builtin("gemma").render(image)


def test_hf_helpers_are_available() -> None:
    source = (
        "{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}{{ m.role[0] }}{% endfor %}"
        "|{{ strftime_now('%Y') }}|{{ {'k': '<é>'} | tojson }}|{{ bos_token }}{{ eos_token }}|{{ flavour }}"
        "|{% generation %}gen{% endgeneration %}"
    )
    template = ChatTemplate.for_model(gguf_template=None, architecture="llama", override=source)
    year_before = datetime.now().year
    text = template.render(CONVERSATION, bos_token="<s>", eos_token="</s>", extra={"flavour": "mint"})
    years = {f"{year_before}", f"{datetime.now().year}"}
    assert any(text == f'su|{year}|{{"k": "<é>"}}|<s></s>|mint|gen' for year in years)
    with pytest.raises(ChatTemplateError, match="may not replace messages"):
        template.render(CONVERSATION, extra={"messages": []})


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ messages.__class__.__init__.__globals__ }}",
        "{% set _ = messages.append({'role': 'user'}) %}x",
        "{% set _ = messages[0].update({'role': 'x'}) %}x",
    ],
)
def test_sandbox_refuses_attribute_escapes_and_mutation(source: str) -> None:
    template = ChatTemplate.for_model(gguf_template=source, architecture="llama")
    with pytest.raises(ChatTemplateError):
        template.render(CONVERSATION)


def test_template_errors_are_typed_bad_requests() -> None:
    with pytest.raises(ChatTemplateError, match="does not compile.*line 1"):
        ChatTemplate.for_model(gguf_template="{% for m in messages %}", architecture="llama")
    refusing = ChatTemplate.for_model(
        gguf_template="{% if messages[0].role != 'user' %}{{ raise_exception('user first') }}{% endif %}ok",
        architecture="llama",
    )
    with pytest.raises(ChatTemplateError, match="user first") as caught:
        refusing.render(CONVERSATION)
    assert isinstance(caught.value, BadRequest)
    assert refusing.render(CONVERSATION[1:]) == "ok"
    with pytest.raises(ChatTemplateError, match="TypeError"):
        ChatTemplate.for_model(gguf_template="{{ 1 + messages }}", architecture="llama").render(CONVERSATION)
    recursing = "{% macro down(n) %}{{ down(n + 1) }}{% endmacro %}{{ down(0) }}"
    with pytest.raises(ChatTemplateError, match="RecursionError"):
        ChatTemplate.for_model(gguf_template=recursing, architecture="llama").render(CONVERSATION)
    with pytest.raises(ChatTemplateError, match="no role"):
        ChatTemplate.builtin("chatml").render([{"content": "x"}])
    with pytest.raises(ChatTemplateError, match="no role developer"):
        ChatTemplate.builtin("gemma").render([{"role": "developer", "content": "x"}])
    with pytest.raises(ChatTemplateError, match="no built-in chat template named 'mistral'"):
        ChatTemplate.builtin("mistral")
