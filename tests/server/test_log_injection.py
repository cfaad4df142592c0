"""What a client sends cannot forge log lines or fields, nor make one log line huge: every logged client value
is escaped and capped, and a log line repeats only the first few of a client's list."""

from __future__ import annotations

import logging
import sys
import time

import httpx
import pytest
from live_server import TINY_ID

FORGED = "\nrequest_id=0 method=GET path=/forged status=200"


def _records(caplog: pytest.LogCaptureFixture, needle: str, timeout_s: float = 10.0) -> list[str]:
    """The formatted messages containing `needle`; the access line is written just after the response."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [r.getMessage() for r in caplog.records if needle in r.getMessage()]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


@pytest.fixture()
def server_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="edge_runtime")
    return caplog


def _assert_one_line(messages: list[str]) -> None:
    assert messages
    for message in messages:
        assert "\n" not in message and "\r" not in message


def test_a_newline_in_the_path_cannot_forge_an_access_line(
    http: httpx.Client, server_log: pytest.LogCaptureFixture
) -> None:
    response = http.get("/v1/models/x%0Arequest_id=0%20method=GET%20path=/forged%20status=200")
    assert response.status_code == 404
    request_id = response.headers["x-request-id"]
    lines = _records(server_log, f"request_id={request_id}")
    _assert_one_line(lines)
    assert '\\nrequest_id=0 method=GET path=/forged status=200"' in lines[0]


def test_a_newline_in_the_user_field_or_model_name_cannot_forge_an_access_line(
    http: httpx.Client, server_log: pytest.LogCaptureFixture
) -> None:
    chat = http.post(
        "/v1/chat/completions",
        json={"model": TINY_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "user": FORGED},
    )
    assert chat.status_code == 200
    lines = _records(server_log, f"request_id={chat.headers['x-request-id']}")
    _assert_one_line(lines)
    assert 'user="\\nrequest_id=0' in lines[0]
    native = http.post("/v1/inference/completion", json={"model_id": "m" + FORGED + "\x1b[2J", "content": "x"})
    assert native.status_code == 400
    lines = _records(server_log, f"request_id={native.headers['x-request-id']}")
    _assert_one_line(lines)
    assert "\x1b" not in lines[0] and "\\x1b[2J" in lines[0]


def test_twenty_thousand_ignored_keys_make_a_short_log_line(
    http: httpx.Client, server_log: pytest.LogCaptureFixture
) -> None:
    extras = ",".join(f'"{i:x}\\n":0' for i in range(20_000))
    body = f'{{"model_id": "{TINY_ID}", "content": "x", "sampling_params": {{"max_tokens": 1}}, {extras}}}'
    response = http.post("/v1/inference/completion", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    lines = _records(server_log, f"request_id={response.headers['x-request-id']} ignored unknown keys")
    assert len(lines) == 1
    assert len(lines[0]) < 1000 and lines[0].endswith("and 19980 more")
    _assert_one_line(lines)


def test_loggable_escapes_quotes_and_caps() -> None:
    from edge_runtime.log_safe import loggable, loggable_list

    assert loggable("tiny") == "tiny"
    assert loggable("a\nb\r\u2028\x00\x85") == '"a\\nb\\r\\u2028\\x00\\x85"'
    assert loggable("alice status=200") == '"alice status=200"'
    assert loggable('say "hi"') == '"say \\"hi\\""'
    assert loggable("back\\slash") == '"back\\\\slash"'
    assert loggable("") == '""'
    capped = loggable("x" * 1000)
    assert capped.startswith('"' + "x" * 200) and capped.endswith('... (800 more characters)"')
    assert loggable_list(["a", "b c"]) == 'a, "b c"'
    assert loggable_list([str(i) for i in range(25)]).endswith("19 and 5 more")


def test_the_serve_formatter_keeps_each_record_on_one_line() -> None:
    from edge_runtime.log_safe import OneLineFormatter

    formatter = OneLineFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("edge_runtime", logging.INFO, __file__, 1, "failed: %s", ("a\nb\x1b",), None)
    assert formatter.format(record) == "INFO failed: a\\nb\\x1b"
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "one\ntwo", (), sys.exc_info())
    formatted = formatter.format(record)
    assert formatted.startswith("ERROR one\\ntwo\nTraceback")
