"""The compiler's dispatch: a schema to its rewrite, its reference, its merge, its alternatives, or per type to
the seam that writes it (objects, arrays, numbers, strings); const and enum as literals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.gbnf_text import gbnf_literal
from edge_runtime.grammar.grammar import Grammar, compile_rules
from edge_runtime.grammar.json_schema.arrays import ArrayRules
from edge_runtime.grammar.json_schema.core import alt, json_text, json_type, value_key
from edge_runtime.grammar.json_schema.keywords import ANNOTATIONS, ASSERTIONS, TYPES
from edge_runtime.grammar.json_schema.logic import LogicRules, excludes_strings
from edge_runtime.grammar.json_schema.numbers import NumberRules
from edge_runtime.grammar.json_schema.objects import ObjectRules
from edge_runtime.grammar.json_schema.refs import RefRules
from edge_runtime.grammar.json_schema.strings import StringRules

MAX_EXPR_CALLS = 40_000
"""Most subschemas one compile writes (each a call of `expr`; the slowest schema the corpus passes takes about
32,000, about 1 s): past that, nested anyOf/oneOf/allOf with negations have multiplied out."""


def _lone_branch(schema: dict[str, Any]) -> Any:
    """The one branch of an allOf that is all there is to `schema` (other branches True or {}), or None."""
    branches = schema["allOf"]
    if not isinstance(branches, list) or any(k not in ANNOTATIONS for k in schema if k != "allOf"):
        return None
    kept = [branch for branch in branches if branch is not True and branch != {}]
    return kept[0] if len(kept) == 1 else None


class SchemaCompiler(LogicRules, RefRules, ObjectRules, ArrayRules, NumberRules, StringRules):
    """One compile of one schema to GBNF rules: `expr` is the entry; each seam's mixin writes its part."""

    def expr(self, schema: Any, pointer: str) -> str | None:
        """GBNF expression of the values `schema` accepts; None when it accepts none. Memoized per compile by
        a digest of what it says but for annotations (`merged_keys`): merges (allOf, $ref beside keywords,
        anyOf branches over a shared base) rebuild equal sub-schemas as new dicts (Github_hard o69586: 2,842
        object compiles), and documents repeat definitions and schemas that differ only in their
        descriptions (Github_hard o9916: 928 compiles of 139). An expression that left keywords unenforced
        (lenient) is not reused, so each of their pointers is named."""
        self.expr_calls += 1
        if self.expr_calls > MAX_EXPR_CALLS:  # alternatives multiplied out: refused in a second, not a minute
            raise GrammarError(f"the schema needs too many subschemas compiled (over {MAX_EXPR_CALLS:,})")
        if schema is True:
            return self.use("value")
        if schema is False:
            return None
        if not isinstance(schema, dict):
            raise self.invalid(pointer, "a schema must be an object or a boolean")
        # memoized inline, not through a helper: a call around `dispatch` would cost two stack frames per
        # level of nesting, and the deepest schemas would hit the recursion limit sooner
        key = self.merged_keys.key(schema)
        if key in self.exprs:
            return self.exprs[key]
        unenforced = len(self.unenforced)
        found = self.dispatch(schema, pointer)
        if len(self.unenforced) == unenforced:
            self.exprs[key] = found
        return found

    def dispatch(self, schema: dict[str, Any], pointer: str) -> str | None:
        """`expr` of a schema object, not memoized."""
        rewritten = self.without_logic(schema, pointer)
        if rewritten is not schema:
            return self.expr(rewritten, pointer)
        if "$ref" in schema:
            return self.with_ref(schema, pointer)
        if "allOf" in schema:
            lone = _lone_branch(schema)
            if lone is not None:  # a $ref alone in allOf stays one named rule (recursive schemas compile)
                return self.expr(lone, pointer)
            return self.expr(self.flatten(schema, pointer), pointer)
        if "anyOf" in schema or "oneOf" in schema:
            return self.alternatives(schema, pointer)
        return self.plain(schema, pointer)

    def plain(self, schema: dict[str, Any], pointer: str) -> str | None:
        types = self.declared_types(schema, pointer)
        if self.negates_everything(schema, pointer):
            return None
        if "const" in schema or "enum" in schema:
            return self.values(schema, pointer, types)
        options: list[str | None] = []
        for name in types:
            if name == "null":
                options.append(self.use("null"))
            elif name == "boolean":
                options.append(self.use("boolean"))
            elif name == "string":
                options.append(self.string(schema, pointer))
            elif name == "number":
                options.append(self.number(schema, pointer, integer=False))
            elif name == "integer" and "number" not in types:
                options.append(self.number(schema, pointer, integer=True))
            elif name == "object":
                options.append(self.object(schema, pointer))
            elif name == "array":
                options.append(self.array(schema, pointer))
        if set(types) == set(TYPES) and all(k in ANNOTATIONS or k not in ASSERTIONS for k in schema):
            return self.use("value")
        return self.rule("v", alt(options))

    def declared_types(self, schema: dict[str, Any], pointer: str) -> list[str]:
        declared = schema.get("type")
        if declared is None:
            names = list(TYPES)
        else:
            names = self.type_names(declared, pointer)
        negated = schema.get("not")
        if isinstance(negated, dict) and set(negated) - ANNOTATIONS <= {"type"} and "type" in negated:
            excluded = negated["type"] if isinstance(negated["type"], list) else [negated["type"]]
            names = [n for n in names if n not in excluded and not (n == "integer" and "number" in excluded)]
            if "integer" in excluded and "number" in names:
                self.unenforceable("not", pointer, "excluding integers from numbers")
        return [n for n in TYPES if n in names]

    def negates_everything(self, schema: dict[str, Any], pointer: str) -> bool:
        """Checks `not`, `if` and dynamic references; True when `not` excludes every value."""
        negated = schema.get("not")
        if "not" in schema:
            if negated is True or negated == {}:
                return True
            type_only = (
                isinstance(negated, dict) and "type" in negated and set(negated) - ANNOTATIONS <= {"type"}
            )
            if negated is not False and not type_only and not excludes_strings(schema):
                self.unenforceable("not", pointer)
        if "if" in schema and ("then" in schema or "else" in schema):
            self.unenforceable("if", pointer)
        for keyword in ("$dynamicRef", "$recursiveRef"):
            if keyword in schema:
                self.unenforceable(keyword, pointer)
        return False

    def values(self, schema: dict[str, Any], pointer: str, types: list[str]) -> str | None:
        if "enum" in schema and not isinstance(schema["enum"], list):
            raise self.invalid(pointer, "enum must be an array")
        candidates = [schema["const"]] if "const" in schema else []
        if "enum" in schema:
            enum_values = schema["enum"]
            keys = {value_key(v) for v in enum_values}
            candidates = (
                [v for v in candidates if value_key(v) in keys] if "const" in schema else enum_values
            )
        allowed_types = set(types) | ({"integer"} if "number" in types else set())
        kept = [v for v in candidates if json_type(v) in allowed_types]
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const", "type") and k in ASSERTIONS}
        barred = self.barred_values(rest.get("not"), pointer)
        if barred is not None:  # a `not` of values (what oneOf's exclusions write beside an enum): no grammar
            kept = [v for v in kept if value_key(v) not in barred]
            del rest["not"]
        if rest and kept:
            checker = self.sub_grammar(rest, pointer)
            kept = [v for v in kept if checker.matches(json_text(v))]
        return alt([self.literal(v) for v in kept])

    def barred_values(self, negated: Any, pointer: str) -> set[Any] | None:
        """The `value_key`s of the values a `not` excludes when it says nothing but `const` or `enum`, else None:
        an enum beside it keeps the values not among them, in JSON Schema's equality, without compiling a
        grammar of the negation to test them (189 such grammars in the 90 schemas between 30 and 80 ms)."""
        negated = self.resolved(negated, pointer)
        if not isinstance(negated, dict) or not ({"const", "enum"} & set(negated)):
            return None
        if set(negated) - ANNOTATIONS - {"const", "enum"} or not isinstance(negated.get("enum", []), list):
            return None
        found = self.finite_values(negated)
        return None if found is None else {value_key(v) for v in found}

    def literal(self, value: Any) -> str:
        """GBNF for one JSON value in any layout the grammar allows; numbers in any spelling of the same
        decimal value without exponent (1, 1.0 and 1.00 are one value in JSON Schema)."""
        if isinstance(value, list):
            if not value:
                return self.enclosed("[]")
            return self.enclosed("[]", f" {self.comma} ".join(self.literal(item) for item in value))
        if isinstance(value, dict):
            if not value:
                return self.enclosed("{}")
            members = f" {self.comma} ".join(
                f"{gbnf_literal(json.dumps(key, ensure_ascii=False))} {self.colon} {self.literal(item)}"
                for key, item in value.items()
            )
            return self.enclosed("{}", members)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
            if number == number.to_integral_value():
                digits = str(abs(int(number)))
                sign = '"-"? ' if digits == "0" else '"-" ' if number < 0 else ""
                return f'{sign}"{digits}" ( "." "0"+ )?'
            return f'"{format(number.normalize(), "f")}" "0"*'
        return gbnf_literal(json_text(value))

    def sub_grammar(self, schema: dict[str, Any], pointer: str) -> Grammar:
        """The grammar of `schema` alone, to test enum values against the keywords beside them. Memoized per
        compile by the schema's JSON (its `$ref`s are absolute, so equal text means the same schema): one
        schema repeated `{"not": {"enum": [...]}}` beside 502 enums, 9 distinct, and compiled each 502 times.
        A sub-grammar that left keywords unenforced (lenient) is not reused, so each pointer is named.
        Always in JSON Schema's open objects: an enum value is written as it is, so closing objects, a limit
        on what a model invents, must not drop a valid value (an object value beside a `not` was dropped, and
        the schema refused as accepting nothing)."""
        key = json.dumps(schema, ensure_ascii=False)
        found = self.sub_grammars.get(key)
        if found is not None:
            return found
        sub = SchemaCompiler(self.registry, self.lenient, closed_objects=False)
        sub.sub_grammars = self.sub_grammars
        root = sub.expr(schema, pointer)
        self.unenforced.extend(u for u in sub.unenforced if u not in self.unenforced)
        grammar = compile_rules(sub.grammar_rules(root or "[^\\x00-\\U0010FFFF]"))
        if not sub.unenforced:
            self.sub_grammars[key] = grammar
        return grammar
