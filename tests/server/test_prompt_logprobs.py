"""vLLM's `prompt_logprobs` on /v1/completions through the official openai SDK: per prompt token (the first
null) a dict by token id of the token itself and the top-k alternatives, each with logprob, rank and text; the
same engine numbers echo with logprobs reports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from live_server import TINY_ID, RunningServer

PROMPT_IDS = [5, 17, 42, 9, 30, 17, 11]
"""A token prompt, so each position's actual token id is known."""
TOP_K = 3


@pytest.fixture(params=["/v1/openai/v1", "/v1"])
def sdk(request: pytest.FixtureRequest, tiny_server: RunningServer) -> Iterator[openai.OpenAI]:
    base_url = f"{tiny_server.base_url}{request.param}"
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
        yield client  # closed: see the exit_stack fixture on what an open client does


def _create(sdk: openai.OpenAI, prompt: Any, top_k: int = TOP_K, **kwargs: Any) -> Any:
    return sdk.completions.create(
        model=TINY_ID,
        prompt=prompt,
        max_tokens=2,
        temperature=0.0,
        extra_body={"prompt_logprobs": top_k},
        **kwargs,
    )


def _prompt_logprobs(choice: Any) -> list[dict[str, dict[str, Any]] | None]:
    assert choice.model_extra is not None
    entries: list[dict[str, dict[str, Any]] | None] = choice.model_extra["prompt_logprobs"]
    return entries


def _check_structure(entries: list[dict[str, dict[str, Any]] | None], prompt_ids: list[int], top_k: int) -> None:
    assert len(entries) == len(prompt_ids)
    assert entries[0] is None
    for entry, token_id in zip(entries[1:], prompt_ids[1:]):
        assert entry is not None
        actual = entry[str(token_id)]
        assert actual["rank"] >= 1 and actual["logprob"] <= 0.0 and isinstance(actual["decoded_token"], str)
        ranked = sorted(entry.values(), key=lambda e: e["rank"])
        top = [e for e in ranked if e["rank"] <= top_k]
        assert [e["rank"] for e in top] == list(range(1, top_k + 1))
        assert [e["logprob"] for e in top] == sorted((e["logprob"] for e in top), reverse=True)
        if actual["rank"] > top_k:
            assert len(entry) == top_k + 1 and actual["logprob"] <= top[-1]["logprob"]
        else:
            assert len(entry) == top_k


def test_structure_without_echo(sdk: openai.OpenAI) -> None:
    result = _create(sdk, PROMPT_IDS)
    (choice,) = result.choices
    assert result.usage.prompt_tokens == len(PROMPT_IDS)
    _check_structure(_prompt_logprobs(choice), PROMPT_IDS, TOP_K)
    assert choice.prompt_logprobs == _prompt_logprobs(choice)  # the SDK keeps extras as attributes too
    assert choice.logprobs is None


def test_zero_gives_only_the_actual_token_and_its_rank(sdk: openai.OpenAI) -> None:
    (choice,) = _create(sdk, PROMPT_IDS, top_k=0).choices
    entries = _prompt_logprobs(choice)
    assert entries[0] is None
    for entry, token_id in zip(entries[1:], PROMPT_IDS[1:]):
        assert entry is not None and list(entry) == [str(token_id)] and entry[str(token_id)]["rank"] >= 1


def test_values_are_what_echo_with_logprobs_reports(sdk: openai.OpenAI) -> None:
    scored = _create(sdk, PROMPT_IDS, echo=True, logprobs=TOP_K)
    (choice,) = scored.choices
    entries = _prompt_logprobs(choice)
    _check_structure(entries, PROMPT_IDS, TOP_K)
    echoed = choice.logprobs
    assert echoed is not None and echoed.token_logprobs is not None and echoed.top_logprobs is not None
    assert echoed.token_logprobs[0] is None
    for position in range(1, len(PROMPT_IDS)):
        entry = entries[position]
        assert entry is not None
        assert entry[str(PROMPT_IDS[position])]["logprob"] == echoed.token_logprobs[position]
        top = {e["decoded_token"]: e["logprob"] for e in entry.values() if e["rank"] <= TOP_K}
        # Keyed by text, as echo's top_logprobs are (two ids with one text collapse there as here).
        assert top == echoed.top_logprobs[position]
    plain = _create(sdk, PROMPT_IDS)
    assert _prompt_logprobs(plain.choices[0]) == entries


def test_a_text_prompt_is_not_echoed_unless_asked(sdk: openai.OpenAI) -> None:
    plain = _create(sdk, "The cat sat")
    echoed = _create(sdk, "The cat sat", echo=True)
    assert echoed.choices[0].text == "The cat sat" + plain.choices[0].text
    entries = _prompt_logprobs(plain.choices[0])
    assert len(entries) == plain.usage.prompt_tokens and entries[0] is None
    assert _prompt_logprobs(echoed.choices[0]) == entries


def test_every_choice_of_every_prompt_gets_its_own_prompts_list(sdk: openai.OpenAI) -> None:
    prompts = [PROMPT_IDS, PROMPT_IDS[:4]]
    result = _create(sdk, prompts, n=2)
    assert sorted(c.index for c in result.choices) == [0, 1, 2, 3]
    by_index = {c.index: _prompt_logprobs(c) for c in result.choices}
    _check_structure(by_index[0], PROMPT_IDS, TOP_K)
    _check_structure(by_index[2], PROMPT_IDS[:4], TOP_K)
    assert by_index[0] == by_index[1] and by_index[2] == by_index[3]
    assert by_index[2] == by_index[0][:4]


def test_streamed_equals_not_streamed_on_each_choices_first_chunk(sdk: openai.OpenAI) -> None:
    prompts = [PROMPT_IDS, PROMPT_IDS[:4]]
    whole = {c.index: _prompt_logprobs(c) for c in _create(sdk, prompts, n=2).choices}
    seen: dict[int, list[Any]] = {}
    for chunk in _create(sdk, prompts, n=2, stream=True):
        for choice in chunk.choices:
            extra = (choice.model_extra or {}).get("prompt_logprobs")
            if choice.index not in seen:
                assert extra is not None, "the first chunk of a choice carries its prompt logprobs"
                seen[choice.index] = extra
            else:
                assert extra is None
    assert seen == whole


def test_above_the_cap_is_a_400_naming_it(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _create(sdk, PROMPT_IDS, top_k=21)
    assert caught.value.param == "prompt_logprobs"
    with pytest.raises(openai.BadRequestError):
        _create(sdk, PROMPT_IDS, top_k=-1)


def test_absent_unless_asked(sdk: openai.OpenAI) -> None:
    result = sdk.completions.create(model=TINY_ID, prompt=PROMPT_IDS, max_tokens=2)
    assert "prompt_logprobs" not in (result.choices[0].model_extra or {})
