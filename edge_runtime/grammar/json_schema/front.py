"""The public entry points: a schema to GBNF text, to a compiled `Grammar` (memoized), and `json_object` mode."""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from collections.abc import Callable
from threading import Lock
from typing import Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.grammar import MAX_GRAMMAR_CHARS, Grammar, compile_gbnf
from edge_runtime.grammar.json_schema.compiler import SchemaCompiler
from edge_runtime.grammar.json_schema.core import Resolver
from edge_runtime.grammar.json_schema.refs import SchemaRegistry


def json_schema_to_gbnf(
    schema: dict[str, Any] | bool,
    *,
    lenient: bool = False,
    closed_objects: bool = False,
    resolver: Resolver | None = None,
) -> tuple[str, tuple[str, ...]]:
    """GBNF text (start rule `root`) of the JSON texts valid under `schema`, and the keywords left
    unenforced ("keyword at pointer"; always empty unless lenient). Raises GrammarError on a bad schema,
    a keyword it cannot enforce (strict), or a schema that accepts no value. `closed_objects`: see the
    package docstring (edge_runtime.grammar.json_schema)."""
    try:
        size = len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise GrammarError(f"the schema is not JSON: {exc}") from exc
    _check_schema_size(size)
    registry = SchemaRegistry(resolver)
    root_schema = registry.add_root(schema)
    compiler = SchemaCompiler(registry, lenient, closed_objects)
    try:
        root = compiler.expr(root_schema, "#")
    except RecursionError:
        raise GrammarError(
            "the schema is too deeply nested or has too many properties or items to compile"
        ) from None
    if root is None:
        raise GrammarError("the schema accepts no value, so no output can satisfy it")
    return compiler.gbnf(root), tuple(compiler.unenforced)


def _compile(schema: Any, lenient: bool, closed_objects: bool, resolver: Resolver | None) -> Grammar:
    text, unenforced = json_schema_to_gbnf(
        schema, lenient=lenient, closed_objects=closed_objects, resolver=resolver
    )
    try:
        grammar = compile_gbnf(text)
    except GrammarError as exc:
        raise GrammarError(f"the schema cannot be compiled to a grammar: {exc.reason}") from exc
    return dataclasses.replace(grammar, unenforced=unenforced)


def _check_schema_size(json_chars: int) -> None:
    """A schema bigger than the grammar limit would compile to a bigger grammar still; refused up front."""
    if json_chars > MAX_GRAMMAR_CHARS:
        raise GrammarError(f"the schema is {json_chars:,} characters of JSON; the limit is {MAX_GRAMMAR_CHARS:,}")


class _LruCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, bool, bool], Grammar] = OrderedDict()
        self.lock = Lock()

    def get(self, key: tuple[str, bool, bool], build: Callable[[], Grammar]) -> Grammar:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
                return found
        grammar = build()
        with self.lock:
            self.entries[key] = grammar
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return grammar


_CACHE = _LruCache(256)


def compile_json_schema(
    schema: dict[str, Any] | bool,
    *,
    lenient: bool = False,
    closed_objects: bool = False,
    resolver: Resolver | None = None,
) -> Grammar:
    """Compile a JSON Schema to a Grammar, memoized by its compact JSON text and the options in a bounded
    LRU (not when a `resolver` is given: what it returns may change). Keys keep their order: the grammar
    writes properties in schema order, so schemas that differ only in that order differ here."""
    if resolver is not None:
        return _compile(schema, lenient, closed_objects, resolver)
    try:
        key = json.dumps(schema, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise GrammarError(f"the schema is not JSON: {exc}") from exc
    _check_schema_size(len(key))
    return _CACHE.get(
        (key, lenient, closed_objects), lambda: _compile(json.loads(key), lenient, closed_objects, None)
    )


def compile_json_object() -> Grammar:
    """`json_object` mode: any JSON value whose top is an object."""
    compiler = SchemaCompiler(SchemaRegistry(None), lenient=False)
    return compile_gbnf(compiler.gbnf(compiler.use("object-any")))
