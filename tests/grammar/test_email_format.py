"""`format: email` writes addresses that email-validator (what pydantic's EmailStr checks with) accepts: a
dotted domain whose top-level domain is letters and not special-use, within RFC 5321's lengths. Still RFC 5321
mailboxes, so the JSON-Schema-Test-Suite's valid addresses with a domain literal (`a@[127.0.0.1]`) stay."""

from __future__ import annotations

import json
import random

import pytest
from test_schema_sentences import random_sentence

from edge_runtime.grammar import compile_json_schema
from edge_runtime.grammar.json_schema.formats import SPECIAL_USE_DOMAINS

email_validator = pytest.importorskip("email_validator")
GRAMMAR = compile_json_schema({"type": "string", "format": "email"})


def _accepts(address: str) -> bool:
    return GRAMMAR.matches(json.dumps(address))


def _validator_accepts(address: str) -> bool:
    try:
        email_validator.validate_email(address, check_deliverability=False, allow_domain_literal=True)
    except email_validator.EmailNotValidError:
        return False
    return True


def test_every_address_the_grammar_writes_passes_email_validator() -> None:
    rng = random.Random(7)
    written = [random_sentence(GRAMMAR, rng, limit=400) for _ in range(300)]
    addresses = [json.loads(sentence) for sentence in written if sentence is not None]
    assert len(addresses) > 250
    refused = [address for address in addresses if not _validator_accepts(address)]
    assert refused == []


@pytest.mark.parametrize(
    "address",
    ["a@b", "a@localhost", "x@ab--c.com", "x@xn--abc.com"]
    + [f"a@b.{tld}" for tld in SPECIAL_USE_DOMAINS]
    + ["a@b.TEST", "a@b.Onion"],
)
def test_what_email_validator_refuses_is_not_written(address: str) -> None:
    assert not _validator_accepts(address)
    assert not _accepts(address)


@pytest.mark.parametrize(
    "address",
    ["joe.bloggs@example.com", "te.s.t@example.com", "x@abc--d.com", "x@a.tests", "x@mail.localhost.com"],
)
def test_near_misses_stay_allowed(address: str) -> None:
    assert _validator_accepts(address)
    assert _accepts(address)
