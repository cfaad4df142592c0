"""Call grammars: every sentence is a well-formed call whose arguments validate against the tool's schema.

The oracle is llama.cpp's own grammar sampler over the tiny model's vocabulary: it checks that our GBNF is in
llama.cpp's dialect, accepts and refuses hand-written strings (our grammar engine must agree), and walks
random sentences of the grammar.
"""

from __future__ import annotations

import ctypes
import random
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

pytest.importorskip("edge_runtime.grammar.json_schema", reason="the JSON Schema compiler has not landed yet")

import llama_cpp

from edge_runtime.engine.tool_calls import (
    CALL_SEPARATOR,
    MAX_CALLS_PER_TURN,
    TOOL_FORMATS,
    ToolSpec,
    call_trigger,
    format_tool_calls,
    parse_tool_calls,
)
from edge_runtime.engine.tool_calls_grammar import (
    call_grammar,
    call_grammar_gbnf,
    prefixed_rules,
)
from edge_runtime.errors import BadRequest
from edge_runtime.grammar import GrammarError, compile_gbnf
from edge_runtime.grammar.gbnf_text import gbnf_literal

WEATHER = ToolSpec(
    "get_weather",
    "Weather in a city",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 12},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "unit": {"enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
)
BOOKING = ToolSpec(
    "book",
    "Book seats",
    {
        "type": "object",
        "properties": {
            "seats": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 99},
                "maxItems": 3,
            },
            "window": {"type": "boolean"},
            "note": {"type": ["string", "null"], "maxLength": 5},
        },
        "required": ["seats", "window"],
        "additionalProperties": False,
    },
)
CLOCK = ToolSpec("now", "The time", {"type": "object", "properties": {}, "additionalProperties": False})
TOOLS = [WEATHER, BOOKING, CLOCK]

_LOG_SINK = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
"""Held for the life of the process: llama.cpp calls it from C."""


class LlamaCppGrammarOracle:
    """llama.cpp's grammar sampler driven token by token over a vocabulary-only model."""

    def __init__(self, model_path: Path) -> None:
        llama_cpp.llama_log_set(_LOG_SINK, ctypes.c_void_p(0))
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self._model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), params)
        if not self._model:
            raise RuntimeError(f"llama.cpp could not load {model_path}")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._eos = llama_cpp.llama_vocab_eos(self._vocab)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)

    def close(self) -> None:
        llama_cpp.llama_model_free(self._model)

    def _sampler(self, gbnf: str) -> ctypes.c_void_p:
        sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, gbnf.encode(), b"root")
        if not sampler:
            raise AssertionError(f"llama.cpp refused the grammar:\n{gbnf}")
        return sampler

    def _allowed(self, sampler: ctypes.c_void_p, tokens: list[int]) -> list[int]:
        data = (llama_cpp.llama_token_data * len(tokens))(
            *(llama_cpp.llama_token_data(t, 0.0, 0.0) for t in tokens)
        )
        array = llama_cpp.llama_token_data_array(data, len(tokens), -1, False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
        return [data[i].id for i in range(array.size) if data[i].logit != float("-inf")]

    def _tokens(self, text: str) -> list[int]:
        raw = text.encode()
        buffer = (llama_cpp.llama_token * (len(raw) + 8))()
        count = llama_cpp.llama_tokenize(self._vocab, raw, len(raw), buffer, len(buffer), False, False)
        if count < 0:
            raise AssertionError(f"could not tokenize {text!r}")
        return list(buffer[:count])

    def _piece(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        length = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[:length]

    def matches(self, gbnf: str, text: str) -> bool:
        """True when `text` is a whole sentence of the grammar, for llama.cpp and for our grammar engine
        (the one that will run these grammars) alike."""
        verdict = self._llama_cpp_matches(gbnf, text)
        ours = compile_gbnf(gbnf).matches(text)
        assert ours == verdict, f"llama.cpp says {verdict}, our grammar engine {ours}, on {text!r}"
        return verdict

    def _llama_cpp_matches(self, gbnf: str, text: str) -> bool:
        sampler = self._sampler(gbnf)
        try:
            for token in self._tokens(text):
                if not self._allowed(sampler, [token]):
                    return False
                llama_cpp.llama_sampler_accept(sampler, token)
            return bool(self._allowed(sampler, [self._eos]))
        finally:
            llama_cpp.llama_sampler_free(sampler)

    def random_sentences(self, gbnf: str, count: int, seed: int, max_tokens: int = 400) -> Iterator[str]:
        """Random walks through the grammar: each step takes a uniformly chosen allowed token, and ends
        with probability 1/2 whenever the grammar may end. Walks longer than max_tokens are dropped.
        Only tokens that are whole UTF-8 text are taken: llama.cpp's matcher is lenient with stray bytes."""
        rng = random.Random(seed)
        everything = [t for t in range(self._n_vocab) if t == self._eos or _is_text(self._piece(t))]
        produced = 0
        for _ in range(count * 4):
            sampler = self._sampler(gbnf)
            try:
                text = b""
                for _ in range(max_tokens):
                    allowed = self._allowed(sampler, everything)
                    assert allowed, f"dead end after {text!r}"
                    if self._eos in allowed and (len(allowed) == 1 or rng.random() < 0.5):
                        yield text.decode()
                        produced += 1
                        break
                    token = rng.choice([t for t in allowed if t != self._eos])
                    llama_cpp.llama_sampler_accept(sampler, token)
                    text += self._piece(token)
            finally:
                llama_cpp.llama_sampler_free(sampler)
            if produced == count:
                return
        raise AssertionError(f"only {produced} of {count} random walks ended within {max_tokens} tokens")


def _is_text(piece: bytes) -> bool:
    try:
        return bool(piece.decode())
    except UnicodeDecodeError:
        return False


@pytest.fixture(scope="module")
def oracle(tiny_model_path: Path) -> Iterator[LlamaCppGrammarOracle]:
    checker = LlamaCppGrammarOracle(tiny_model_path)
    yield checker
    checker.close()


def _validated_calls(text: str, fmt: str) -> list[tuple[str, dict]]:
    _content, calls = parse_tool_calls(text, fmt, TOOLS)
    by_name = {t.name: t for t in TOOLS}
    checked = []
    for call in calls:
        assert call.error is None, (call.error, text)
        assert call.arguments is not None
        jsonschema.validate(call.arguments, by_name[call.name].parameters)
        checked.append((call.name, call.arguments))
    return checked


@pytest.mark.parametrize("fmt", TOOL_FORMATS)
def test_random_sentences_parse_into_valid_calls(oracle: LlamaCppGrammarOracle, fmt: str) -> None:
    gbnf = call_grammar_gbnf(TOOLS, fmt, required=True, parallel=True)
    names_seen = set()
    ours = compile_gbnf(gbnf)
    for sentence in oracle.random_sentences(gbnf, count=12, seed=7):
        assert ours.matches(sentence), sentence
        calls = _validated_calls(sentence, fmt)
        assert calls, sentence
        names_seen.update(name for name, _ in calls)
    assert names_seen == {"get_weather", "book", "now"}


@pytest.mark.parametrize("fmt", TOOL_FORMATS)
def test_single_call_grammar_yields_exactly_one_call(oracle: LlamaCppGrammarOracle, fmt: str) -> None:
    gbnf = call_grammar_gbnf(TOOLS, fmt, required=True, parallel=False)
    for sentence in oracle.random_sentences(gbnf, count=6, seed=11):
        assert len(_validated_calls(sentence, fmt)) == 1, sentence


@pytest.mark.parametrize("fmt", TOOL_FORMATS)
def test_a_turn_may_end_after_any_call_and_makes_at_most_the_cap(oracle: LlamaCppGrammarOracle, fmt: str) -> None:
    """After a call the separator is the likeliest token: taking it must not force another whole call."""
    several = call_grammar_gbnf(TOOLS, fmt, required=True, parallel=True)
    single = call_grammar_gbnf(TOOLS, fmt, required=True, parallel=False)
    one = format_tool_calls([("now", {})], fmt)
    if fmt != "python_list":
        assert oracle.matches(several, one + CALL_SEPARATOR) and oracle.matches(single, one + CALL_SEPARATOR)
    calls = [("get_weather", {"city": f"c{i}"}) for i in range(MAX_CALLS_PER_TURN + 1)]
    assert oracle.matches(several, format_tool_calls(calls[:-1], fmt))
    assert not oracle.matches(several, format_tool_calls(calls, fmt))


@pytest.mark.parametrize("fmt", TOOL_FORMATS)
def test_hand_written_calls(oracle: LlamaCppGrammarOracle, fmt: str) -> None:
    single = call_grammar_gbnf(TOOLS, fmt, required=True, parallel=False)
    several = call_grammar_gbnf(TOOLS, fmt, required=True, parallel=True)
    good = format_tool_calls([("get_weather", {"city": "Oslo", "days": 3})], fmt)
    two = format_tool_calls([("book", {"seats": [1, 2], "window": True, "note": None}), ("now", {})], fmt)
    assert oracle.matches(single, good)
    assert not oracle.matches(single, two)
    assert oracle.matches(several, two)
    for wrong in (
        [("get_weather", {"days": 3})],  # required argument missing
        [("get_weather", {"city": "Oslo", "days": "3"})],  # wrong type
        [("get_weather", {"city": "Oslo", "days": 9})],  # out of range
        [("get_weather", {"city": "Oslo", "wind": 1})],  # argument the schema does not have
        [("book", {"seats": [1, 2, 3, 4], "window": False})],  # too many items
        [("get_stock", {"s": "x"})],  # not a tool
    ):
        assert not oracle.matches(several, format_tool_calls(wrong, fmt)), wrong
    assert not oracle.matches(several, "Sure! " + good)


@pytest.mark.parametrize("fmt", TOOL_FORMATS)
def test_auto_grammar_allows_text_until_the_trigger(oracle: LlamaCppGrammarOracle, fmt: str) -> None:
    gbnf = call_grammar_gbnf(TOOLS, fmt, required=False, parallel=True)
    call = format_tool_calls([("now", {})], fmt)
    assert oracle.matches(gbnf, "Let me check the time.\n" + call)
    assert oracle.matches(gbnf, "No tool needed: it is sunny.")
    assert oracle.matches(gbnf, "")
    trigger = call_trigger(fmt)
    assert not oracle.matches(gbnf, f"I will write {trigger} and then something else")
    assert not oracle.matches(gbnf, call + " and text after the call")


def test_auto_grammar_free_text_may_end_in_part_of_the_trigger(oracle: LlamaCppGrammarOracle) -> None:
    gbnf = call_grammar_gbnf(TOOLS, "generic", required=False, parallel=False)
    assert oracle.matches(gbnf, "a <tool_cal")
    assert oracle.matches(gbnf, "<<tool_tool_<tool_callx")
    assert oracle.matches(gbnf, "x<tool_" + format_tool_calls([("now", {})], "generic"))
    assert not oracle.matches(gbnf, "x<tool_<tool_call>")


def test_named_tool_choice_allows_only_that_tool(oracle: LlamaCppGrammarOracle) -> None:
    grammar = call_grammar(TOOLS, "generic", required=True, parallel=False, only="now")
    assert oracle.matches(grammar.gbnf, format_tool_calls([("now", {})], "generic"))
    assert not oracle.matches(grammar.gbnf, format_tool_calls([("get_weather", {"city": "x"})], "generic"))
    with pytest.raises(BadRequest, match="not among the tools"):
        call_grammar(TOOLS, "generic", required=True, parallel=False, only="get_stock")


def test_prefixed_rules_rename_definitions_and_references_only(oracle: LlamaCppGrammarOracle) -> None:
    grammar = 'root ::= item ("," item)* # item list\nitem ::= "item" [a-z] | "[root]"\n'
    renamed = prefixed_rules(grammar, "t7-")
    assert renamed == 't7-root ::= t7-item ("," t7-item)* # item list\nt7-item ::= "item" [a-z] | "[root]"\n'
    wrapped = renamed + "root ::= t7-root\n"
    assert oracle.matches(wrapped, "itema,[root],itemz")
    assert not oracle.matches(wrapped, "item")


def test_literals_escape_what_gbnf_needs(oracle: LlamaCppGrammarOracle) -> None:
    text = 'say "hi" \\ and\n\ttab é, next line\x85 line\u2028 paragraph\u2029 del\x7f'
    assert oracle.matches(f"root ::= {gbnf_literal(text)}\n", text)


def test_refusals() -> None:
    with pytest.raises(BadRequest, match="same name"):
        call_grammar_gbnf([CLOCK, CLOCK], "json", required=True, parallel=False)
    with pytest.raises(BadRequest, match="at least one tool"):
        call_grammar_gbnf([], "json", required=True, parallel=False)
    spaced = ToolSpec("look up", "", {"type": "object"})
    with pytest.raises(BadRequest, match="function_tag"):
        call_grammar_gbnf([spaced], "function_tag", required=True, parallel=False)
    with pytest.raises(BadRequest, match="Python name"):
        call_grammar_gbnf([spaced], "python_list", required=True, parallel=False)
    unique = ToolSpec(
        "tags", "", {"type": "object", "properties": {"t": {"type": "array", "uniqueItems": True}}}
    )
    for fmt in TOOL_FORMATS:
        with pytest.raises(GrammarError, match="tool 'tags'.*uniqueItems"):
            call_grammar_gbnf([unique], fmt, required=True, parallel=False)
    union = ToolSpec("f", "", {"anyOf": [{"type": "object"}, {"type": "string"}]})
    with pytest.raises(BadRequest, match="keyword anyOf"):
        call_grammar_gbnf([union], "python_list", required=True, parallel=False)
