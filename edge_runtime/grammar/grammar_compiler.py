"""The grammar engine's front door, in XGrammar's shape: a `GrammarCompiler` turns JSON Schema, GBNF text,
choices and json_object mode into immutable `Grammar`s (the expensive step), and each request walks one with
a cheap `GrammarMatcher(grammar, vocab)`. The compiler keeps the only cache of compiled grammars; the server
holds one for its lifespan."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.gbnf_text import gbnf_literal
from edge_runtime.grammar.grammar import Grammar, compile_gbnf

if TYPE_CHECKING:
    from edge_runtime.grammar.json_schema import JsonLayout

CacheKey = tuple[str, str, bool, bool, str]
"""(kind, canonical source text, lenient, closed_objects, JSON layout)."""


def canonical_json(value: Any) -> str:
    """`value` as compact JSON with its keys in their order (the grammar writes properties in schema order,
    so schemas that differ only in that order are different grammars): what the cache keys sources by."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise GrammarError(f"the schema is not JSON: {exc}") from exc


class GrammarCompiler:
    """Compiles and caches: a bounded LRU of grammars keyed once by the canonical text of their source, so
    every request with the same schema or GBNF text shares one Grammar (and its token masks). Thread-safe;
    two threads asking for the same new grammar at once may both compile it, and one result is kept. The
    JSON Schema compiler (the larger module) is imported on first use."""

    def __init__(self, max_entries: int = 128) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self._max_entries = max_entries
        self._entries: OrderedDict[CacheKey, Grammar] = OrderedDict()
        self._lock = threading.Lock()

    def json_schema(
        self,
        schema: dict[str, Any] | bool,
        *,
        lenient: bool = False,
        closed_objects: bool = False,
        resolver: Callable[[str], Any] | None = None,
        layout: JsonLayout = "any",
    ) -> Grammar:
        """A JSON Schema (draft 2020-12) compiled; see edge_runtime.grammar.json_schema for `lenient` and
        `closed_objects`, and `JsonLayout` for `layout`. Cached by the schema's canonical JSON (key order kept:
        properties come out in schema order, so reordered schemas are different grammars), except with a
        `resolver` (what it returns for a remote `$ref` may change)."""
        from edge_runtime.grammar.json_schema import compile_checked_schema, schema_json

        text = schema_json(schema)

        def compile_schema() -> Grammar:
            return compile_checked_schema(
                schema, lenient=lenient, closed_objects=closed_objects, resolver=resolver, layout=layout
            )

        if resolver is not None:
            return compile_schema()
        return self._cached(("schema", text, lenient, closed_objects, layout), compile_schema)

    def gbnf(self, text: str) -> Grammar:
        """llama.cpp GBNF text compiled (start rule `root`)."""
        return self._cached(("gbnf", text, False, False, ""), lambda: compile_gbnf(text))

    def choice(self, choices: Sequence[str]) -> Grammar:
        """A grammar whose sentences are exactly the given strings (OpenAI/vLLM `guided_choice`)."""
        return self.gbnf("root ::= " + " | ".join(gbnf_literal(choice) for choice in choices))

    def written(self, kind: str, source: Any, write: Callable[[], tuple[str, tuple[str, ...]]]) -> Grammar:
        """A grammar whose GBNF text a caller writes from `source` (the tool-call grammar of a request's tools):
        `source` is a JSON value holding everything the text depends on, and `write` returns the text and what
        it leaves unenforced. Cached by `kind` and the source's canonical JSON, so the text is written (and the
        schemas in it compiled) once per distinct source, not once per request. The key is not held to the
        schema size limit: `write` checks each schema it compiles, and says which one is too big."""
        def compile_written() -> Grammar:
            text, unenforced = write()
            return compile_gbnf(text, unenforced=unenforced)

        return self._cached((kind, canonical_json(source), False, False, ""), compile_written)

    def json_object(self, layout: JsonLayout = "any") -> Grammar:
        """`json_object` mode: any JSON value whose top is an object, laid out as `layout` says."""
        from edge_runtime.grammar.json_schema import compile_json_object

        return self._cached(("json_object", "", False, False, layout), lambda: compile_json_object(layout))

    def __len__(self) -> int:
        return len(self._entries)

    def _cached(self, key: CacheKey, compile_: Callable[[], Grammar]) -> Grammar:
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
        grammar = compile_()
        with self._lock:
            grammar = self._entries.setdefault(key, grammar)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return grammar
