"""Compiled grammars shared across requests, keyed by the canonical text of what they were compiled from."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_runtime.grammar import Grammar


class GrammarCache:
    """A bounded LRU of compiled grammars. Compiling is the expensive step; every request with the same
    schema or GBNF text reuses one immutable Grammar. The grammar package is imported on first use only."""

    def __init__(self, max_entries: int = 128) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, Grammar] = OrderedDict()
        self._lock = threading.Lock()

    def json_schema(self, schema: dict[str, Any] | bool, *, lenient: bool = False) -> Grammar:
        """Strict unless `lenient`: then keywords a grammar cannot enforce are left out and listed in the
        grammar's `unenforced`. Objects that declare properties and say nothing of extra ones get none
        (as OpenAI, llama.cpp and XGrammar generate them): a model otherwise invents keys until max_tokens."""
        from edge_runtime.grammar import compile_json_schema

        # key order kept: properties come out in schema order, so reordered schemas are different grammars
        kind = "lenient-schema:" if lenient else "schema:"
        key = kind + json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
        return self._get_or_compile(
            key, lambda: compile_json_schema(schema, lenient=lenient, closed_objects=True)
        )

    def json_object(self) -> Grammar:
        from edge_runtime.grammar.json_schema import compile_json_object

        return self._get_or_compile("json_object", compile_json_object)

    def gbnf(self, text: str) -> Grammar:
        from edge_runtime.grammar import compile_gbnf

        return self._get_or_compile("gbnf:" + text, lambda: compile_gbnf(text))

    def choice(self, choices: list[str]) -> Grammar:
        """A grammar whose sentences are exactly the given strings (OpenAI/vLLM `guided_choice`)."""
        from edge_runtime.grammar.gbnf_text import gbnf_literal

        return self.gbnf("root ::= " + " | ".join(gbnf_literal(choice) for choice in choices))

    def __len__(self) -> int:
        return len(self._entries)

    def _get_or_compile(self, key: str, compile_: Callable[[], Grammar]) -> Grammar:
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
        grammar = compile_()
        with self._lock:
            self._entries[key] = grammar
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return grammar
