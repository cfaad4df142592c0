"""Grammar engine: GBNF and JSON Schema compiled to byte-level grammars, and token masks over a vocabulary.

Four nouns: a `Vocabulary` (once per model), a `GrammarCompiler` (once per server: it keeps the only cache),
an immutable `Grammar` (once per grammar, shared), and a cheap per-request `GrammarMatcher(grammar, vocab)`
cursor. Nothing here knows about llama.cpp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.grammar import Grammar, compile_gbnf
from edge_runtime.grammar.grammar_compiler import GrammarCompiler
from edge_runtime.grammar.matcher import GrammarMatcher
from edge_runtime.grammar.vocab import Vocabulary

if TYPE_CHECKING:
    from edge_runtime.grammar.json_schema import JsonLayout

__all__ = [
    "Grammar",
    "GrammarCompiler",
    "GrammarError",
    "GrammarMatcher",
    "Vocabulary",
    "compile_gbnf",
    "compile_json_schema",
]


def compile_json_schema(
    schema: dict[str, Any] | bool,
    *,
    lenient: bool = False,
    closed_objects: bool = False,
    resolver: Any = None,
    layout: JsonLayout = "any",
) -> Grammar:
    """Compile a JSON Schema (draft 2020-12) to a grammar, uncached (a `GrammarCompiler` caches); see
    edge_runtime.grammar.json_schema (imported on first use: it is the larger module). `resolver` serves remote
    `$ref`s from local documents."""
    from edge_runtime.grammar.json_schema import compile_json_schema as compile_schema

    return compile_schema(schema, lenient=lenient, closed_objects=closed_objects, resolver=resolver, layout=layout)
