"""The public entry points: a schema to GBNF text, to a compiled `Grammar`, and `json_object` mode.

Nothing here caches: `edge_runtime.grammar.GrammarCompiler` owns the one cache, keyed by `schema_json`.
"""

from __future__ import annotations

from typing import Any

from edge_runtime.grammar.collector import collector_paused
from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.gbnf_text import GrammarRules, rules_text
from edge_runtime.grammar.grammar import MAX_GRAMMAR_CHARS, Grammar, compile_rules
from edge_runtime.grammar.grammar_compiler import canonical_json
from edge_runtime.grammar.json_schema.compiler import SchemaCompiler
from edge_runtime.grammar.json_schema.core import JsonLayout, Resolver
from edge_runtime.grammar.json_schema.refs import SchemaRegistry


def schema_json(schema: Any) -> str:
    """`canonical_json(schema)`, the one serialization of a compile (it keys the cache), checked against the
    size limit: a bigger schema would compile to a bigger grammar still, so it is refused up front."""
    text = canonical_json(schema)
    if len(text) > MAX_GRAMMAR_CHARS:
        raise GrammarError(f"the schema is {len(text):,} characters of JSON; the limit is {MAX_GRAMMAR_CHARS:,}")
    return text


def json_schema_to_gbnf(
    schema: dict[str, Any] | bool,
    *,
    lenient: bool = False,
    closed_objects: bool = False,
    resolver: Resolver | None = None,
    layout: JsonLayout = "any",
) -> tuple[str, tuple[str, ...]]:
    """GBNF text (start rule `root`) of the JSON texts valid under `schema`, and the keywords left
    unenforced ("keyword at pointer"; always empty unless lenient). Raises GrammarError on a bad schema,
    a keyword it cannot enforce (strict), or a schema that accepts no value. `closed_objects`: see the
    package docstring (edge_runtime.grammar.json_schema); `layout`: see `JsonLayout`."""
    schema_json(schema)
    rules, unenforced = _schema_rules(schema, lenient, closed_objects, resolver, layout)
    return rules_text(rules), unenforced


def compile_checked_schema(
    schema: dict[str, Any] | bool,
    *,
    lenient: bool,
    closed_objects: bool,
    resolver: Resolver | None,
    layout: JsonLayout = "any",
) -> Grammar:
    """Compile a schema whose `schema_json` the caller has already taken (and so checked), with the cycle
    collector paused (see edge_runtime.grammar.collector)."""
    with collector_paused():
        rules, unenforced = _schema_rules(schema, lenient, closed_objects, resolver, layout)
        try:
            return compile_rules(rules, unenforced=unenforced)
        except GrammarError as exc:
            raise GrammarError(f"the schema cannot be compiled to a grammar: {exc.reason}") from exc


def compile_json_schema(
    schema: dict[str, Any] | bool,
    *,
    lenient: bool = False,
    closed_objects: bool = False,
    resolver: Resolver | None = None,
    layout: JsonLayout = "any",
) -> Grammar:
    """Compile a JSON Schema to a Grammar, afresh each call (a `GrammarCompiler` caches)."""
    schema_json(schema)
    return compile_checked_schema(
        schema, lenient=lenient, closed_objects=closed_objects, resolver=resolver, layout=layout
    )


def compile_json_object(layout: JsonLayout = "any") -> Grammar:
    """`json_object` mode: any JSON value whose top is an object."""
    compiler = SchemaCompiler(SchemaRegistry(None), lenient=False, layout=layout)
    return compile_rules(compiler.grammar_rules(compiler.use("object-any")))


def _schema_rules(
    schema: Any, lenient: bool, closed_objects: bool, resolver: Resolver | None, layout: JsonLayout = "any"
) -> tuple[GrammarRules, tuple[str, ...]]:
    registry = SchemaRegistry(resolver)
    root_schema = registry.add_root(schema)
    compiler = SchemaCompiler(registry, lenient, closed_objects, layout)
    try:
        root = compiler.expr(root_schema, "#")
    except RecursionError:
        raise GrammarError(
            "the schema is too deeply nested or has too many properties or items to compile"
        ) from None
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        if isinstance(exc, GrammarError):
            raise
        problem = _metaschema_problem(schema)
        if problem is None:
            raise  # a valid schema the compiler failed on: our bug, and reported as one
        raise GrammarError(f"invalid schema: {problem}") from None
    if root is None:
        raise GrammarError("the schema accepts no value, so no output can satisfy it")
    return compiler.grammar_rules(root), tuple(compiler.unenforced)


def _metaschema_problem(schema: Any) -> str | None:
    """What makes `schema` invalid under draft 2020-12's metaschema, or None. The compiler checks the keywords
    it reads as it reads them; a malformed one it trips on (a `properties` that is a string, under a keyword
    it reached first) is explained here, on that failure path only, so a valid schema pays nothing."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    try:
        error = best_match(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema))
    except RecursionError:
        return "it is too deeply nested to check"
    if error is None:
        return None
    pointer = "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in error.absolute_path)
    return f"at '#{pointer}': {error.message}"
