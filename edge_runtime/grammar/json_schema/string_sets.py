"""One string under several constraints at once (pattern, minLength/maxLength, format, excluded values),
as the intersection of their automata (char_dfa). Lengths a pattern or format already implies are dropped; a
maxLength too long to count beside them is narrowed (see MIN_NARROWED_LENGTH).

A single GBNF expression says one of them; their intersection needs an automaton. Formats take part through
regular expressions of the same languages as formats.py's rules, or narrower (IP-literal hosts in URIs
and IPv6 addresses in e-mail domains are left out): a narrowing, never a widening.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.json_schema.char_dfa import (
    CharDfa,
    complement,
    intersection,
    length_dfa,
    minimized,
    names_dfa,
    pattern_dfa,
)
from edge_runtime.grammar.json_schema.formats import FORMAT_RULES, UNSUPPORTED_FORMATS
from edge_runtime.grammar.json_schema.keywords import ALL_PATTERNS, NOT_PATTERNS

_HEX = "[0-9a-fA-F]"
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_DATE = (
    "([0-9]{4}-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    "|[0-9]{4}-(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    "|[0-9]{4}-02-(0[1-9]|1[0-9]|2[0-8])"
    "|([0-9]{2}([02468][48]|[2468]0|[13579][26])|([02468][048]|[13579][26])00)-02-29)"
)
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
_UNRESERVED = "[a-zA-Z0-9._~-]"
_PCT = f"%{_HEX}{_HEX}"
_SUB_DELIMS = "[!$&'()*+,;=]"
_PCHAR = f"({_UNRESERVED}|{_PCT}|{_SUB_DELIMS}|[:@])"
_AUTHORITY = f"(({_UNRESERVED}|{_PCT}|{_SUB_DELIMS}|:)*@)?({_UNRESERVED}|{_PCT}|{_SUB_DELIMS})*(:[0-9]*)?"
_URI_TAIL = rf"(\?({_PCHAR}|[/?])*)?(#({_PCHAR}|[/?])*)?"
_HIER = f"(//{_AUTHORITY}(/{_PCHAR}*)*|/({_PCHAR}+(/{_PCHAR}*)*)?|{_PCHAR}+(/{_PCHAR}*)*|)"
_URI = f"[a-zA-Z][a-zA-Z0-9+.-]*:{_HIER}{_URI_TAIL}"
_NO_COLON_SEGMENT = f"({_UNRESERVED}|{_PCT}|{_SUB_DELIMS}|@)+"
_RELATIVE = f"(//{_AUTHORITY}(/{_PCHAR}*)*|/({_PCHAR}+(/{_PCHAR}*)*)?|{_NO_COLON_SEGMENT}(/{_PCHAR}*)*|)"
_LABEL = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_ATEXT = "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]"

FORMAT_PATTERNS = {
    "date": _DATE,
    "time": _TIME,
    "date-time": f"{_DATE}[Tt]{_TIME}",
    "uuid": f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
    "ipv4": _IPV4,
    "email": rf"{_ATEXT}+(\.{_ATEXT}+)*@({_LABEL}(\.{_LABEL})*|\[{_IPV4}\])",
    "uri": _URI,
    "uri-reference": f"({_URI}|{_RELATIVE}{_URI_TAIL})",
}
"""Format name -> an anchored-by-caller regular expression of its strings (the formats schema_formats checks,
where an automaton of them stays small)."""


MAX_LENGTH_PRODUCT = 4096
"""Most states of a pattern or format automaton counted against lengths (the grammar gets one rule each)."""
MIN_NARROWED_LENGTH = 128
"""A maxLength that would need more than MAX_LENGTH_PRODUCT states beside a pattern or format is generated up
to the longest length that fits, when that is at least this long; a shorter budget is refused."""


@lru_cache(maxsize=64)
def format_dfa(name: str) -> CharDfa | None:
    """The automaton of a format's strings, or None when it has none here."""
    pattern = FORMAT_PATTERNS.get(name)
    return None if pattern is None else pattern_dfa(f"^({pattern})$")


@lru_cache(maxsize=256)
def pattern_complement(pattern: str) -> CharDfa:
    """The strings `pattern` does not match (memoized: merges and key classes ask for the same ones again)."""
    return complement(pattern_dfa(pattern))


def not_matching(pattern: str) -> CharDfa | None:
    """The automaton of the strings `pattern` does not match, or None when the pattern has none here."""
    try:
        return pattern_complement(pattern)
    except GrammarError:
        return None


def string_dfa(schema: dict[str, Any], low: int, high: int | None, excluded: list[str] | None) -> CharDfa | None:
    """The automaton of the strings `schema`'s patterns (`pattern`, and the internal lists of patterns to match
    and not to match), format, lengths (`low`..`high`) and `excluded` values allow together; None when one of them has no automaton here. GrammarError when it grows too big."""
    parts: list[CharDfa] = []
    if isinstance(schema.get("pattern"), str):
        parts.append(pattern_dfa(schema["pattern"]))
    parts += [pattern_dfa(pattern) for pattern in schema.get(ALL_PATTERNS, ())]
    parts += [pattern_complement(pattern) for pattern in schema.get(NOT_PATTERNS, ())]
    name = schema.get("format")
    if isinstance(name, str) and name in FORMAT_PATTERNS:
        found = format_dfa(name)
        if found is None:
            return None
        parts.append(found)
    elif isinstance(name, str) and (name in FORMAT_RULES or name in UNSUPPORTED_FORMATS):
        return None
    if excluded:
        parts.append(complement(names_dfa(excluded)))
    dfa = parts[0] if parts else length_dfa(0, None)
    for part in parts[1:]:
        dfa = minimized(intersection(dfa, part))
    if low <= shortest(dfa):
        low = 0
    if high is not None and (longest := longest_length(dfa)) is not None and longest <= high:
        high = None
    if low > 0 or high is not None:
        budget = MAX_LENGTH_PRODUCT // max(1, len(dfa.transitions)) - 1
        if high is not None and high > budget >= max(low, MIN_NARROWED_LENGTH):
            high = budget  # a narrowing: shorter strings only, never a longer one
        if (high if high is not None else low) > budget:
            raise GrammarError("the lengths and the other string constraints need too many states together")
        dfa = intersection(dfa, length_dfa(low, high))
    return dfa


def shortest(dfa: CharDfa) -> int:
    """The length of the shortest string `dfa` accepts (0 for an empty language: nothing to bound)."""
    if dfa.empty:
        return 0
    depth = {0: 0}
    order = [0]
    for state in order:
        if state in dfa.accepting:
            return depth[state]
        for _, _, target in dfa.transitions[state]:
            if target not in depth:
                depth[target] = depth[state] + 1
                order.append(target)
    return 0


def longest_length(dfa: CharDfa) -> int | None:
    """The length of the longest string `dfa` accepts; None when there is no longest (a cycle)."""
    return None if dfa.empty else _longest_from(dfa, 0, {}, set())


def _longest_from(dfa: CharDfa, state: int, memo: dict[int, int], visiting: set[int]) -> int | None:
    """`longest_length` from `state` (a function of its own, not a closure that calls itself: that would be a
    reference cycle, left for the collector)."""
    if state in memo:
        return memo[state]
    if state in visiting:
        return None
    visiting.add(state)
    best = 0 if state in dfa.accepting else -1
    for _, _, target in dfa.transitions[state]:
        found = _longest_from(dfa, target, memo, visiting)
        if found is None:
            return None
        best = max(best, found + 1)
    visiting.discard(state)
    memo[state] = best
    return best
