"""The official `openai` SDK, sync and async, against the real server on the tiny model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import jsonschema
import openai
import pytest
from live_server import TINY_ID, RunningServer

PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Who are you?"}]


def assert_canonical_layout(text: str) -> None:
    """Outside strings, the only whitespace is the one space after each "," and ":" (JsonLayout "canonical":
    the API generates JSON laid out as json.dumps lays it out)."""
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char.isspace():
            assert char == " " and text[index - 1] in ",:" and not text[index + 1].isspace(), text
        elif char in ",:":
            assert text[index + 1] == " ", text


@pytest.fixture(params=["/v1/openai/v1", "/v1"])
def sdk(request: pytest.FixtureRequest, tiny_server: RunningServer) -> Iterator[openai.OpenAI]:
    base_url = f"{tiny_server.base_url}{request.param}"
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
        yield client  # closed: see the exit_stack fixture on what an open client does


def test_completion_usage_and_determinism(sdk: openai.OpenAI) -> None:
    first = sdk.completions.create(model=TINY_ID, prompt="The cat", max_tokens=8, temperature=0.8, seed=11)
    again = sdk.completions.create(model=TINY_ID, prompt="The cat", max_tokens=8, temperature=0.8, seed=11)
    assert first.object == "text_completion" and first.model == TINY_ID
    assert first.choices[0].text == again.choices[0].text
    assert first.choices[0].finish_reason in ("stop", "length")
    usage = first.usage
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 0 < usage.completion_tokens <= 8


def test_completion_n_logprobs_echo(sdk: openai.OpenAI) -> None:
    result = sdk.completions.create(
        model=TINY_ID, prompt="a b", max_tokens=5, n=2, logprobs=2, echo=True, temperature=1.0, seed=3
    )
    assert sorted(c.index for c in result.choices) == [0, 1]
    for choice in result.choices:
        assert choice.text.startswith("a b")
        assert choice.logprobs is not None and choice.logprobs.tokens is not None
        generated = [lp for lp in choice.logprobs.token_logprobs or [] if lp is not None]
        assert generated and all(lp <= 0.0 for lp in generated)
        for top in choice.logprobs.top_logprobs or []:
            assert top is None or len(top) <= 2


def test_completion_stream_matches_the_whole_text_and_reports_usage(sdk: openai.OpenAI) -> None:
    whole = sdk.completions.create(model=TINY_ID, prompt="Hello", max_tokens=12, temperature=0)
    chunks = list(
        sdk.completions.create(
            model=TINY_ID,
            prompt="Hello",
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason


def test_chat_completion_and_stream(sdk: openai.OpenAI) -> None:
    whole = sdk.chat.completions.create(model=TINY_ID, messages=MESSAGES, max_tokens=10, temperature=0)  # type: ignore[arg-type]
    message = whole.choices[0].message
    assert (
        whole.object == "chat.completion" and message.role == "assistant" and isinstance(message.content, str)
    )
    stream = sdk.chat.completions.create(
        model=TINY_ID,
        messages=MESSAGES,
        max_tokens=10,
        temperature=0,  # type: ignore[arg-type]
        stream=True,
        n=2,
    )
    texts = {0: "", 1: ""}
    finished = {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason is not None:
                finished[choice.index] = choice.finish_reason
    assert texts[0] == texts[1] == message.content
    assert finished == {0: whole.choices[0].finish_reason, 1: whole.choices[0].finish_reason}


def test_chat_logprobs(sdk: openai.OpenAI) -> None:
    result = sdk.chat.completions.create(
        model=TINY_ID,
        messages=MESSAGES,
        max_tokens=6,
        logprobs=True,  # type: ignore[arg-type]
        top_logprobs=3,
    )
    content = result.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and all(len(t.top_logprobs) == 3 for t in content)
    for token in content:
        values = [t.logprob for t in token.top_logprobs]
        assert values == sorted(values, reverse=True) and token.logprob <= 0.0


def test_json_schema_output_validates(sdk: openai.OpenAI) -> None:
    for seed in (1, 2, 3):
        result = sdk.chat.completions.create(
            model=TINY_ID,
            messages=MESSAGES,
            temperature=1.0,
            seed=seed,
            max_tokens=200,  # type: ignore[arg-type]
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": PERSON_SCHEMA},
            },
        )
        assert result.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(result.choices[0].message.content or ""), PERSON_SCHEMA)
        assert_canonical_layout(result.choices[0].message.content or "")


def test_json_object_and_guided_choice(sdk: openai.OpenAI) -> None:
    result = sdk.chat.completions.create(
        model=TINY_ID,
        messages=MESSAGES,
        max_tokens=200,
        seed=5,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(result.choices[0].message.content or ""), dict)
    assert_canonical_layout(result.choices[0].message.content or "")
    choices = ["yes", "no", "maybe later"]
    picked = sdk.completions.create(
        model=TINY_ID, prompt="Answer:", max_tokens=20, seed=9, extra_body={"guided_choice": choices}
    )
    assert picked.choices[0].text in choices


def test_embeddings_float_and_base64(sdk: openai.OpenAI, tiny_embed_id: str) -> None:
    default = sdk.embeddings.create(model=tiny_embed_id, input=["first text", "second"])
    floats = sdk.embeddings.create(
        model=tiny_embed_id, input=["first text", "second"], encoding_format="float"
    )
    assert [d.index for d in default.data] == [0, 1]
    for a, b in zip(default.data, floats.data):
        assert a.embedding == pytest.approx(b.embedding, rel=1e-6)
        assert sum(x * x for x in b.embedding) == pytest.approx(1.0, rel=1e-4)
    assert default.usage.prompt_tokens > 0
    short = sdk.embeddings.create(model=tiny_embed_id, input="x", dimensions=8, encoding_format="float")
    assert len(short.data[0].embedding) == 8


def test_async_client(tiny_server: RunningServer) -> None:
    async def run() -> tuple[str, str]:
        client = openai.AsyncOpenAI(base_url=f"{tiny_server.base_url}/v1", api_key="unused", max_retries=0)
        async with client:
            whole = await client.chat.completions.create(
                model=TINY_ID,
                messages=MESSAGES,
                max_tokens=8,  # type: ignore[arg-type]
                temperature=0,
            )
            streamed = ""
            async for chunk in await client.chat.completions.create(
                model=TINY_ID,
                messages=MESSAGES,
                max_tokens=8,
                temperature=0,
                stream=True,  # type: ignore[arg-type]
            ):
                streamed += "".join(c.delta.content or "" for c in chunk.choices)
            return whole.choices[0].message.content or "", streamed

    whole, streamed = asyncio.run(run())
    assert whole == streamed


def test_sdk_errors_are_typed(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="missing", messages=MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=TINY_ID, messages=MESSAGES, top_logprobs=2)  # type: ignore[arg-type]
    assert "top_logprobs" in str(caught.value)


TAGS_SCHEMA = {
    "type": "object",
    "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "uniqueItems": True}},
    "required": ["tags"],
    "additionalProperties": False,
}
"""uniqueItems over strings: no grammar can say it."""


def _tags_format(strict: bool | None) -> dict[str, object]:
    schema: dict[str, object] = {"name": "tags", "schema": TAGS_SCHEMA}
    if strict is not None:
        schema["strict"] = strict
    return {"type": "json_schema", "json_schema": schema}


def test_schema_keyword_no_grammar_can_enforce_is_a_400_with_strict_true(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model=TINY_ID, messages=MESSAGES, max_tokens=50, response_format=_tags_format(True)  # type: ignore[arg-type]
        )
    assert "uniqueItems" in str(caught.value) and "#/properties/tags" in str(caught.value)
    assert '"strict": false' in str(caught.value)


@pytest.mark.parametrize(("stream", "strict"), [(False, False), (True, False), (False, None)])
def test_strict_false_compiles_the_rest_and_names_what_it_left_out(
    sdk: openai.OpenAI, stream: bool, strict: bool | None
) -> None:
    """OpenAI's `strict: false`, which is also its default: the output still follows everything a grammar
    can say (here the string lengths and the object's shape), and a response header names the keyword left
    out."""
    raw = sdk.chat.completions.with_raw_response.create(
        model=TINY_ID,
        messages=MESSAGES,
        max_tokens=200,
        seed=3,
        stream=stream,
        response_format=_tags_format(strict),  # type: ignore[arg-type]
    )
    assert raw.headers["x-unenforced-schema-keywords"] == "response_format: uniqueItems at #/properties/tags"
    parsed = raw.parse()
    if stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in parsed if chunk.choices)  # type: ignore[union-attr]
    else:
        text = parsed.choices[0].message.content or ""  # type: ignore[union-attr]
    without_unique = {**TAGS_SCHEMA, "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 4}}}}
    jsonschema.validate(json.loads(text), without_unique)


def test_a_tool_with_strict_false_is_called_with_what_its_schema_enforces(sdk: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {"name": "tag", "parameters": TAGS_SCHEMA, "strict": False},
    }
    raw = sdk.chat.completions.with_raw_response.create(
        model=TINY_ID, messages=MESSAGES, max_tokens=200, seed=4, tools=[tool], tool_choice="required"  # type: ignore[list-item]
    )
    assert raw.headers["x-unenforced-schema-keywords"] == "tool 'tag' parameters: uniqueItems at #/properties/tags"
    call = raw.parse().choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "tag"
    assert isinstance(json.loads(call.function.arguments)["tags"], list)
    strict_tool = {"type": "function", "function": {"name": "tag", "parameters": TAGS_SCHEMA, "strict": True}}
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(
            model=TINY_ID, messages=MESSAGES, max_tokens=50, tools=[strict_tool], tool_choice="required"  # type: ignore[list-item]
        )


OPEN_SCHEMA = {"type": "object", "properties": {"a": {"const": 1}}, "required": ["a"]}
"""No additionalProperties: JSON Schema allows any other key, and a small model takes the offer."""


def test_objects_get_only_their_declared_properties(sdk: openai.OpenAI) -> None:
    """Schemas without additionalProperties (instructor's JSON_SCHEMA mode, pydantic without
    extra='forbid') come back with the declared keys only, on response_format, guided_json and tools."""
    for seed in range(6):
        answer = sdk.chat.completions.create(
            model=TINY_ID,
            messages=MESSAGES,
            max_tokens=60,
            seed=seed,
            temperature=1.0,
            response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": OPEN_SCHEMA}},
        )
        assert json.loads(answer.choices[0].message.content or "") == {"a": 1}
        assert answer.choices[0].finish_reason == "stop"
        guided = sdk.completions.create(
            model=TINY_ID, prompt="x", max_tokens=60, seed=seed, temperature=1.0,
            extra_body={"guided_json": OPEN_SCHEMA},
        )
        assert json.loads(guided.choices[0].text) == {"a": 1}
    tool = {"type": "function", "function": {"name": "f", "parameters": OPEN_SCHEMA}}
    for seed in range(6):
        called = sdk.chat.completions.create(
            model=TINY_ID, messages=MESSAGES, max_tokens=80, seed=seed, temperature=1.0,
            tools=[tool], tool_choice="required",  # type: ignore[list-item]
        )
        (call,) = called.choices[0].message.tool_calls or []
        assert json.loads(call.function.arguments) == {"a": 1}


def test_vllm_sampling_extras_are_honoured(sdk: openai.OpenAI) -> None:
    """top_k 1 and min_p 1 leave only the likeliest token, so at temperature 1 they decode as greedy does;
    repetition_penalty reaches the engine (0 is refused by name)."""
    greedy = sdk.completions.create(model=TINY_ID, prompt="Once upon", max_tokens=12, temperature=0)
    for extra in ({"top_k": 1}, {"min_p": 1.0}):
        sampled = sdk.completions.create(
            model=TINY_ID, prompt="Once upon", max_tokens=12, temperature=1.0, seed=9, extra_body=extra
        )
        assert sampled.choices[0].text == greedy.choices[0].text, extra
    chat = sdk.chat.completions.create(
        model=TINY_ID, messages=MESSAGES, max_tokens=8, extra_body={"repetition_penalty": 1.3, "top_k": -1}
    )
    assert chat.choices[0].finish_reason in ("stop", "length")
    with pytest.raises(openai.BadRequestError, match="repetition_penalty"):
        sdk.chat.completions.create(
            model=TINY_ID, messages=MESSAGES, max_tokens=8, extra_body={"repetition_penalty": 0}
        )


def test_a_previous_answer_sent_back_as_the_sdk_dumps_it(sdk: openai.OpenAI) -> None:
    """Retry loops send `message.model_dump()` back (annotations, audio, refusal, function_call all null),
    with the OpenAI bookkeeping parameters and a named tool result."""
    first = sdk.chat.completions.create(model=TINY_ID, messages=MESSAGES, max_tokens=8)
    dumped = first.choices[0].message.model_dump()
    assert {"annotations", "audio", "refusal"} <= set(dumped)
    refused = {"role": "assistant", "content": None, "refusal": "I cannot answer that."}
    tool_turn = [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "now", "content": "noon"},
    ]
    second = sdk.chat.completions.create(
        model=TINY_ID,
        messages=[*MESSAGES, dumped, {"role": "user", "content": "Again."}, refused, *tool_turn],  # type: ignore[list-item]
        max_tokens=8,
        store=True,
        metadata={"run": "1"},
        service_tier="auto",
        extra_body={"prompt_cache_key": "k", "safety_identifier": "u-1"},
    )
    assert second.usage is not None and second.usage.prompt_tokens > first.usage.prompt_tokens  # type: ignore[union-attr]


def test_completions_take_response_format_as_vllm_and_llama_server_do(sdk: openai.OpenAI) -> None:
    """The text is the schema's JSON; a keyword no grammar enforces is named in the header (strict false,
    the default) or refused (strict true); response_format beside a guided_* parameter is refused."""
    answer = sdk.completions.create(
        model=TINY_ID, prompt="Person:", max_tokens=80, seed=1,
        extra_body={"response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON_SCHEMA}}},
    )
    jsonschema.validate(json.loads(answer.choices[0].text), PERSON_SCHEMA)
    raw = sdk.completions.with_raw_response.create(
        model=TINY_ID, prompt="Tags:", max_tokens=80, seed=2, extra_body={"response_format": _tags_format(None)}
    )
    assert raw.headers["x-unenforced-schema-keywords"] == "response_format: uniqueItems at #/properties/tags"
    with pytest.raises(openai.BadRequestError, match="uniqueItems"):
        sdk.completions.create(
            model=TINY_ID, prompt="x", max_tokens=8, extra_body={"response_format": _tags_format(True)}
        )
    with pytest.raises(openai.BadRequestError, match="response_format"):
        sdk.completions.create(
            model=TINY_ID, prompt="x", max_tokens=8,
            extra_body={"response_format": {"type": "json_object"}, "guided_choice": ["a"]},
        )
