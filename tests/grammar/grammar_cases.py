"""Loaders for the shared grammar conformance data in /work/shared/grammar-cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CASES_DIR = Path("/work/shared/grammar-cases")
LLAMACPP_DIR = CASES_DIR / "llamacpp"
GBNF_DIR = CASES_DIR / "gbnf"


def load_llamacpp(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((LLAMACPP_DIR / name).read_text(encoding="utf-8"))
    return data


def integration_grammar_cases() -> list[dict[str, Any]]:
    return [case for case in load_llamacpp("grammar_integration.json")["cases"] if case["kind"] == "grammar"]
