"""Sets of characters as code-point ranges, and how GBNF writes them: as a class, or as one character inside a
JSON string (raw or escaped). The regex compiler, key tries and formats share them."""

from __future__ import annotations

from functools import lru_cache

from edge_runtime.grammar.syntax import MAX_CODE_POINT
from edge_runtime.grammar.utf8 import normalize_ranges

Ranges = tuple[tuple[int, int], ...]

_SURROGATES = (0xD800, 0xDFFF)
_SHORT_ESCAPES = {0x08: "b", 0x09: "t", 0x0A: "n", 0x0C: "f", 0x0D: "r"}


def normalized(ranges: list[tuple[int, int]]) -> Ranges:
    """Sorted, merged ranges with the surrogate block removed (no JSON text can hold one)."""
    pieces: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        for part in ((low, min(high, _SURROGATES[0] - 1)), (max(low, _SURROGATES[1] + 1), high)):
            if part[0] <= part[1]:
                pieces.append(part)
    return tuple(normalize_ranges(tuple(pieces), negated=False))


@lru_cache(maxsize=4096)
def complement(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    start = 0
    for low, high in normalized(list(ranges)):
        if low > start:
            out.append((start, low - 1))
        start = high + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return normalized(out)


def _class_char(code: int) -> str:
    if code < 0x80 and (chr(code).isalnum() or chr(code) in " !#$%&'()*+,./:;<=>?@_`{|}~"):
        return chr(code)
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def gbnf_class(ranges: Ranges) -> str:
    """A GBNF character class of exactly these code points, always written positively: llama.cpp's
    negated classes also admit undecodable byte runs, so the text must not rely on them."""
    return (
        "["
        + "".join(
            _class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}" for lo, hi in ranges
        )
        + "]"
    )


@lru_cache(maxsize=4096)
def json_char_set(ranges: Ranges, canonical: bool = False) -> str | None:
    """GBNF for one character of `ranges` as it may appear inside a JSON string (raw, or escaped where JSON
    requires or allows a short escape); None when the set is empty. `canonical`: only the one spelling keys
    are written in (no `\\/`, `\\u00xx` in lower case and only where no short escape exists). Memoized: every
    node of a schema's key trie asks for a set that differs from the others in a character or two."""
    ranges = normalized(list(ranges))
    raw = normalized(
        [part for lo, hi in ranges for part in _minus(lo, hi, ((0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C)))]
    )
    options = [gbnf_class(raw)] if raw else []
    ascii_codes = {code for lo, hi in ranges if lo < 0x80 for code in range(lo, min(hi, 0x7F) + 1)}

    def contains(code: int) -> bool:
        return code in ascii_codes

    if contains(0x22):
        options.append('"\\\\\\""')
    if contains(0x5C):
        options.append('"\\\\\\\\"')
    if contains(0x2F) and not canonical:
        options.append('"\\\\/"')
    controls = [code for code in range(0x20) if contains(code)]
    for code in controls:
        if code in _SHORT_ESCAPES:
            options.append(f'"\\\\{_SHORT_ESCAPES[code]}"')
    if canonical:
        controls = [code for code in controls if code not in _SHORT_ESCAPES]
    if controls:
        high_nibbles = sorted({code >> 4 for code in controls})
        for nibble in high_nibbles:
            lows = [code & 0xF for code in controls if code >> 4 == nibble]
            digits = "".join(f"{low:x}" if canonical else _hex_both_cases(low) for low in lows)
            options.append(f'"\\\\u00{nibble}" [{digits}]')
    if not options:
        return None
    return options[0] if len(options) == 1 else "(" + " | ".join(options) + ")"


def _hex_both_cases(value: int) -> str:
    digit = f"{value:x}"
    return digit if digit.isdigit() else digit + digit.upper()


def _minus(low: int, high: int, holes: Ranges) -> list[tuple[int, int]]:
    parts = [(low, high)]
    for hole_low, hole_high in holes:
        next_parts = []
        for lo, hi in parts:
            if hi < hole_low or lo > hole_high:
                next_parts.append((lo, hi))
                continue
            if lo < hole_low:
                next_parts.append((lo, hole_low - 1))
            if hi > hole_high:
                next_parts.append((hole_high + 1, hi))
        parts = next_parts
    return parts
