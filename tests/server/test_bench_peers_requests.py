"""scripts/bench_peers.py asks both servers for the same thing in their own dialects: these check our side of
that against the real server (the tiny model), and the prompts and verdicts the benchmark builds."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import TINY_ID, RunningServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from peers_report import Row
from peers_workloads import (
    MARKUPS,
    RECORD_SCHEMA,
    Ask,
    Peer,
    PromptTokens,
    make_prompts,
    stream,
    valid_record,
)


@pytest.fixture(scope="module")
def tokens(tiny_model_path: Path) -> Iterator[PromptTokens]:
    vocabulary = PromptTokens(tiny_model_path)
    yield vocabulary
    vocabulary.close()


def test_ignore_eos_writes_exactly_max_tokens_on_edge_runtime(
    tiny_server: RunningServer, tokens: PromptTokens
) -> None:
    peer = Peer("edge-runtime", tiny_server.base_url, TINY_ID, tokens.eog_ids)
    assert tokens.eog_ids, "the tiny model has end-of-generation tokens to ban"
    with httpx.Client(timeout=60) as http:
        run = stream(http, peer, Ask(tokens.tokenize("Once upon a time"), 12, ignore_eos=True))
    assert run.tokens == 12
    assert run.sent <= run.first <= run.last


def test_each_dialect_carries_the_ban_and_the_schema() -> None:
    ask = Ask([2, 10, 11], 7, ignore_eos=True, schema=RECORD_SCHEMA)
    ours = Peer("edge-runtime", "http://127.0.0.1:1", "m", [1, 106]).body(ask)
    theirs = Peer("llama-server", "http://127.0.0.1:2", "m", [1, 106]).body(ask)
    assert ours["logit_bias"] == {"1": -100, "106": -100}
    assert ours["response_format"]["json_schema"]["schema"] == RECORD_SCHEMA
    assert theirs["ignore_eos"] is True and theirs["json_schema"] == RECORD_SCHEMA
    for body in (ours, theirs):
        assert (body["prompt"], body["max_tokens"], body["temperature"]) == ([2, 10, 11], 7, 0.0)


def test_documents_share_the_instruction_prefix(tokens: PromptTokens) -> None:
    prompts = make_prompts(tokens, MARKUPS["gemma"], n_documents=5, prefix_tokens=200)
    assert len(prompts.instructions) >= 200
    assert len({tuple(d) for d in prompts.documents}) == 5
    for document in prompts.documents:
        assert document[: len(prompts.instructions)] == prompts.instructions


def test_an_answer_is_valid_only_when_the_schema_accepts_it() -> None:
    good = (
        '{"name": "Ana Lund", "age": 30, "city": "Porto", "occupation": "baker", "skills": [], '
        '"email": "", "employed": true}'
    )
    assert valid_record(good)
    assert not valid_record(good.replace("30", "-3"))
    assert not valid_record(good[:-1])


def test_ratios_say_above_one_when_edge_runtime_is_ahead() -> None:
    rate = Row("decode", "tokens/s", True, 1.0, {"edge-runtime": [30.0], "llama-server": [20.0]})
    latency = Row("first token", "ms", False, 1.0, {"edge-runtime": [20.0], "llama-server": [30.0]})
    assert rate.ratio() == pytest.approx(1.5) and latency.ratio() == pytest.approx(1.5)
    assert rate.verdict() == latency.verdict() == "met"
