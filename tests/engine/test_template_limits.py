"""Hostile chat templates (a template is a program from a model file): each is stopped with a 400 naming the
template, the renderer keeps working, and the memory it took never reaches the server's process."""

from __future__ import annotations

import threading
import time
import tracemalloc

import pytest

from edge_runtime.engine.chat_template import ChatTemplate, ChatTemplateError
from edge_runtime.engine.template_worker import TemplateRenderer

CONVERSATION = [{"role": "user", "content": "hi"}]

ENDLESS_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x"
EXPONENTIAL_MACRO = (
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
)
MEMORY_BOMBS = [
    "{{ 'a' * 1000000000 }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "{{ 'a'.center(1000000000) }}",
    "{{ '{:>1000000000}'.format('a') }}",
    "{{ [0] * 1000000000 }}",
    "{{ 'a' | center(1000000000) }}",
]
OUTPUT_BOMB = "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"
SERVER_MEMORY_BOUND = 32 * 2**20
"""What a stopped render may cost the server's own process: the request and the error, never the template's
strings (each bomb above builds 1 GB or more)."""


def _template(source: str) -> ChatTemplate:
    return ChatTemplate.for_model(gguf_template=source, architecture="llama")


@pytest.mark.parametrize("source", [ENDLESS_LOOPS, EXPONENTIAL_MACRO])
def test_a_template_that_never_ends_is_stopped(source: str) -> None:
    renderer = TemplateRenderer(processes=1, cpu_budget_s=0.2)  # the default budget is 2 s of CPU
    try:
        with pytest.raises(ChatTemplateError, match=r"^the test template did not finish rendering"):
            renderer.render(source, {"messages": CONVERSATION}, "the test template")
        assert renderer.render("{{ messages[0].content }}", {"messages": CONVERSATION}, "") == "hi"
    finally:
        renderer.close()


@pytest.mark.parametrize("source", MEMORY_BOMBS)
def test_a_template_building_a_huge_value_is_stopped_outside_the_server(source: str) -> None:
    template = _template(source)
    tracemalloc.start()
    try:
        with pytest.raises(ChatTemplateError, match=r"^the model's chat template needed more than \d+ MiB"):
            template.render(CONVERSATION)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < SERVER_MEMORY_BOUND
    assert _template("{{ messages[0].content }}").render(CONVERSATION) == "hi"


def test_a_template_writing_too_much_prompt_is_stopped() -> None:
    with pytest.raises(ChatTemplateError, match=r"wrote more than 16 Mi characters"):
        _template(OUTPUT_BOMB).render(CONVERSATION)


def test_an_override_is_named_as_such() -> None:
    template = ChatTemplate.for_model(gguf_template=None, architecture="llama", override="{{ 'a' * 10**10 }}")
    with pytest.raises(ChatTemplateError, match=r"^the model's chat template override needed more"):
        template.render(CONVERSATION)


def test_a_render_process_outlives_the_thread_that_needed_it() -> None:
    """Requests render on the event loop's worker threads, which retire when idle; the render processes are
    started elsewhere, since a process is killed with the thread that started it (PR_SET_PDEATHSIG)."""
    renderer = TemplateRenderer(processes=1)
    try:
        worker = threading.Thread(target=renderer.render, args=("{{ x }}", {"x": 1}, "the template"))
        worker.start()
        worker.join()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            assert all(process.alive for process in renderer._idle)
            time.sleep(0.05)
        assert renderer._idle and renderer.render("{{ x }}", {"x": 2}, "the template") == "2"
    finally:
        renderer.close()
