"""Strings: lengths, `pattern` (regex.py), `format` (formats.py) and strings unequal to given ones."""

from __future__ import annotations

import json
from typing import Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.json_schema.char_dfa import dfa_to_gbnf
from edge_runtime.grammar.json_schema.core import CompilerCore, seq
from edge_runtime.grammar.json_schema.formats import (
    FORMAT_LENGTHS,
    FORMAT_RULES,
    MIN_BOUNDED_URI,
    UNSUPPORTED_FORMATS,
    bounded_uri,
)
from edge_runtime.grammar.json_schema.keywords import ALL_PATTERNS, NOT_PATTERNS
from edge_runtime.grammar.json_schema.lengths import counted
from edge_runtime.grammar.json_schema.logic import excludes_strings
from edge_runtime.grammar.json_schema.negation import string_exclusion
from edge_runtime.grammar.json_schema.regex import pattern_to_gbnf
from edge_runtime.grammar.json_schema.string_sets import string_dfa

_STRING_KEYS = ("pattern", ALL_PATTERNS, NOT_PATTERNS, "format")
"""What a string automaton is made of besides lengths and excluded values (combined_string's memo key)."""
MAX_AUTOMATON_STATES = 32_768
"""Most states of all string automata one compile writes (one GBNF rule each)."""
MAX_LENGTH = 2**53
"""Longest minLength/maxLength compiled (lengths.py writes any count in a few hundred rules)."""


class StringRules(CompilerCore):
    """A string schema's rule: one constraint as GBNF directly, several as one automaton (a constraint with
    no automaton beside another is refused by name)."""

    def string(self, schema: dict[str, Any], pointer: str) -> str | None:
        low = self.count(schema, "minLength", pointer, 0)
        high = self.count(schema, "maxLength", pointer, None)
        constraints: list[tuple[str, str | None]] = []
        if low > 0 or high is not None:
            if high is not None and high < low:
                return None
            if low > MAX_LENGTH or (high is not None and high > MAX_LENGTH):
                self.unenforceable(
                    "maxLength" if high is not None else "minLength", pointer, f"lengths above {MAX_LENGTH}"
                )
            else:
                chars = counted(self.use("char"), low, high, self.rule)
                constraints.append(("minLength" if low else "maxLength", self.rule("str", f'"\\"" {chars} "\\""')))
        if "pattern" in schema:
            pattern = schema["pattern"]
            if not isinstance(pattern, str):
                raise self.invalid(pointer, "pattern must be a string")
            try:
                content = pattern_to_gbnf(pattern, self.use("char"))
            except GrammarError as exc:
                if not self.lenient:
                    raise GrammarError(f"JSON Schema keyword 'pattern' at '{pointer}': {exc.reason}") from exc
                self.unenforceable("pattern", pointer)
            else:
                constraints.append(("pattern", self.rule("pat", seq('"\\""', content, '"\\""'))))
        excluded = string_exclusion(schema.get("not")) if excludes_strings(schema) else None
        if excluded is not None:
            constraints.append(("not", self.key_not_in(excluded)))
        # patterns from allOf and negations: only the automaton (combined_string) says these
        automaton_only = [kw for kw, key in (("allOf", ALL_PATTERNS), ("not", NOT_PATTERNS)) if schema.get(key)]
        name = schema.get("format")
        if isinstance(name, str) and name in FORMAT_RULES:
            constraints.append(("format", f'"\\"" {self.use(FORMAT_RULES[name])} "\\""'))
        elif isinstance(name, str) and name in UNSUPPORTED_FORMATS:
            self.unenforceable("format", pointer, f"format '{name}' has no grammar here")
        if not constraints and not automaton_only:
            return self.use("string")
        if [keyword for keyword, _ in constraints] in (["minLength", "format"], ["maxLength", "format"]):
            shortest, longest = FORMAT_LENGTHS.get(str(name), (0, None))
            if low <= shortest and longest is not None and (high is None or high >= longest):
                constraints = constraints[1:]  # the format's own lengths imply them
        only_lengths = [keyword for keyword, _ in constraints[:-1]] in (["minLength"], ["maxLength"])
        bounded = name == "uri" and low <= 2 and high is not None and high >= MIN_BOUNDED_URI
        if only_lengths and bounded and not automaton_only:
            self.use("fmt-uri")  # a URI is at least two characters long: a minLength up to 2 holds
            return self.rule("str", f'"\\"" ( {bounded_uri(high)} ) "\\""')
        if len(constraints) > 1 or automaton_only:
            try:
                return self.combined_string(schema, low, high, excluded)
            except GrammarError:
                pass  # refused below, by the name of each constraint beside the first
        for keyword in automaton_only:
            self.unenforceable(keyword, pointer, "patterns combined on one string need too big an automaton")
        for keyword, _ in constraints[1:]:
            self.unenforceable(keyword, pointer, f"together with '{constraints[0][0]}' on one string")
        return constraints[0][1] if constraints else self.use("string")

    def combined_string(
        self, schema: dict[str, Any], low: int, high: int | None, excluded: list[str] | None
    ) -> str | None:
        """One string under several of pattern, lengths, format and excluded values, as the intersection
        of their automata (string_sets.py); GrammarError when one of them has none or it grows too big."""
        key = ("string", *(json.dumps(schema.get(k)) for k in _STRING_KEYS), low, high, *(excluded or ()))
        if key not in self.made:
            self.made[key] = self.string_automaton(schema, low, high, excluded)
        return self.made[key]

    def string_automaton(
        self, schema: dict[str, Any], low: int, high: int | None, excluded: list[str] | None
    ) -> str | None:
        dfa = string_dfa(schema, low, high, excluded)
        self.automaton_states += 0 if dfa is None else len(dfa.transitions)
        if self.automaton_states > MAX_AUTOMATON_STATES:  # each is cheap; hundreds of them are not
            raise GrammarError(f"the string automata of this schema need over {MAX_AUTOMATON_STATES:,} states")
        if dfa is None:
            raise GrammarError("a constraint on this string has no automaton")
        content = dfa_to_gbnf(dfa, self.new_name, self.rules.__setitem__)
        return None if content is None else self.rule("str", f'"\\"" {content} "\\""')
