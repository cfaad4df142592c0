"""Operations against upstreams that misbehave on purpose: retries with backoff on 429/503 (honouring
Retry-After) for non-streamed requests only, timeouts on a server that never answers, failover past a dead
or silent upstream, a client leaving cancels the upstream request, and output off its schema caught."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import front_server
from live_server import RunningServer, free_port, post_raw
from remote_setup import add_remote
from scripted_upstream import Answer, ScriptedUpstream
from upstream_processes import silent_socket

HI = [{"role": "user", "content": "hi"}]
OK = {"id": "c1", "object": "chat.completion", "created": 1, "model": "up",
      "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
BUSY = {"error": {"message": "busy", "type": "server_error"}}


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, scripted: ScriptedUpstream) -> Iterator[RunningServer]:
    store = tmp_path_factory.mktemp("front-ops")
    add_remote(store, "up", scripted.base_url, names=("scripted",))
    with front_server(store, upstream_retries=2) as server:
        yield server


def test_429_and_503_are_retried_with_their_retry_after(http: httpx.Client, scripted: ScriptedUpstream) -> None:
    scripted.script(
        Answer(503, BUSY, {"retry-after": "0"}), Answer(429, BUSY, {"retry-after": "0.1"}), Answer(body=OK)
    )
    answer = http.post("/v1/chat/completions", json={"model": "up", "messages": HI})
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "fine"
    assert len(scripted.received) == 3


def test_retries_run_out_into_a_503_with_retry_after(http: httpx.Client, scripted: ScriptedUpstream) -> None:
    scripted.script(Answer(503, BUSY, {"retry-after": "0"}))
    answer = http.post("/v1/chat/completions", json={"model": "up", "messages": HI})
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "upstream_overloaded"
    assert len(scripted.received) == 3


def test_a_retry_after_too_long_to_wait_is_passed_on_at_once(http: httpx.Client, scripted: ScriptedUpstream) -> None:
    scripted.script(Answer(429, BUSY, {"retry-after": "120"}))
    answer = http.post("/v1/chat/completions", json={"model": "up", "messages": HI})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "120"
    assert len(scripted.received) == 1


def test_a_streamed_request_is_never_retried(http: httpx.Client, scripted: ScriptedUpstream) -> None:
    scripted.script(Answer(503, BUSY, {"retry-after": "0"}), Answer(body=OK))
    answer = http.post("/v1/chat/completions", json={"model": "up", "messages": HI, "stream": True})
    assert answer.status_code == 503
    assert len(scripted.received) == 1


def test_a_stream_cut_before_done_ends_with_an_error_event(http: httpx.Client, scripted: ScriptedUpstream) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "x",
             "choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": None}]}
    scripted.script(Answer(events=[chunk], done=False))
    answer = http.post("/v1/chat/completions", json={"model": "up", "messages": HI, "stream": True})
    lines = [line for line in answer.text.splitlines() if line.startswith("data: ")]
    assert json.loads(lines[0][6:])["model"] == "up"
    assert json.loads(lines[-2][6:])["error"]["code"] == "upstream_unavailable"
    assert lines[-1] == "data: [DONE]"


def test_output_off_its_schema_is_a_502_whole_and_an_error_event_streamed(
    http: httpx.Client, scripted: ScriptedUpstream
) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    response_format = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": True}}
    bad = {**OK, "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"ok": "yes"}'},
                              "finish_reason": "stop"}]}
    scripted.script(Answer(body=bad))
    answer = http.post("/v1/chat/completions", json={"model": "up", "messages": HI, "response_format": response_format})
    assert answer.status_code == 502
    assert "at /ok" in answer.json()["error"]["message"]
    assert scripted.received[0].body["response_format"]["json_schema"]["strict"] is True
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "x",
             "choices": [{"index": 0, "delta": {"content": '{"ok": 1}'}, "finish_reason": "stop"}]}
    scripted.script(Answer(events=[chunk]))
    streamed = http.post(
        "/v1/chat/completions", json={"model": "up", "messages": HI, "response_format": response_format, "stream": True}
    )
    lines = [line for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert json.loads(lines[-2][6:])["error"]["code"] == "upstream_bad_output"


def test_timeouts_and_failover_past_dead_and_silent_upstreams(tmp_path: Path, scripted: ScriptedUpstream) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with silent_socket() as silent:
        add_remote(tmp_path, "silent", silent.base_url, names=("silent",))
        add_remote(tmp_path, "dead", dead, names=("dead",))
        add_remote(tmp_path, "chain", dead, silent.base_url, scripted.base_url, names=("dead", "silent", "scripted"))
        scripted.script(Answer(body=OK))
        with front_server(tmp_path, upstream_read_timeout_s=0.5, upstream_retries=1) as front, front.client() as http:
            timed_out = http.post("/v1/chat/completions", json={"model": "silent", "messages": HI})
            streamed = http.post("/v1/chat/completions", json={"model": "silent", "messages": HI, "stream": True})
            refused = http.post("/v1/inference/chat-completion", json={"model_id": "dead", "messages": HI})
            chained = http.post("/v1/chat/completions", json={"model": "chain", "messages": HI})
    assert timed_out.status_code == streamed.status_code == 504
    assert timed_out.json()["error"]["code"] == "upstream_timeout"
    assert refused.status_code == 502 and "could not be reached" in refused.json()["detail"]
    assert chained.status_code == 200 and chained.json()["model"] == "chain"


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_cancels_the_upstream_request(tmp_path: Path, stream: bool) -> None:
    with silent_socket() as silent:
        add_remote(tmp_path, "silent", silent.base_url, names=("silent",))
        with (
            front_server(tmp_path, upstream_read_timeout_s=60.0, upstream_connect_timeout_s=0.5) as front,
            front.client() as http,
        ):
            client = post_raw(front.base_url, "/v1/chat/completions",
                              {"model": "silent", "messages": HI, "stream": stream})
            silent.wait_for_request("POST /v1/chat/completions")
            client.close()
            request_lines = silent.wait_all_closed_by_peer()  # within 30 s: the read timeout is 60 s
            assert "POST /v1/chat/completions HTTP/1.1" in request_lines
            assert 'edge_runtime_upstream_in_flight{upstream="silent"} 0' in http.get("/metrics").text


def test_least_loaded_routing_passes_a_busy_upstream_by(tmp_path: Path, scripted: ScriptedUpstream) -> None:
    """With the first upstream holding a request that never ends, the next request goes to the second; in
    order (the default), it would wait behind the first one's timeout."""
    scripted.script(Answer(body=OK))
    with silent_socket() as silent:
        add_remote(tmp_path, "spread", silent.base_url, scripted.base_url, names=("silent", "scripted"),
                   routing="least-loaded")
        settings = {"upstream_read_timeout_s": 6.0, "upstream_retries": 0}
        with (
            front_server(tmp_path, **settings) as front,
            front.client() as http,
            ThreadPoolExecutor(1) as pool,
        ):
            stuck = pool.submit(http.post, "/v1/chat/completions", json={"model": "spread", "messages": HI})
            silent.wait_for_request("POST /v1/chat/completions")
            answer = http.post("/v1/chat/completions", json={"model": "spread", "messages": HI})
            assert answer.status_code == 200
            assert len(scripted.received) == 1
            assert stuck.result().status_code == 200  # timed out on the silent one, then failed over
