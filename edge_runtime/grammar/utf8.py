"""Code point sets to UTF-8 byte-range sequences, so that character classes become byte-level alternatives."""

from __future__ import annotations

from edge_runtime.grammar.syntax import MAX_CODE_POINT

ByteRange = tuple[int, int]

_SURROGATES = (0xD800, 0xDFFF)
_LENGTH_LIMITS = (0x7F, 0x7FF, 0xFFFF)


def normalize_ranges(ranges: tuple[tuple[int, int], ...], negated: bool) -> list[tuple[int, int]]:
    """Sorted, merged, inclusive code point ranges; the complement over U+0000..U+10FFFF when negated."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    if not negated:
        return merged
    complement: list[tuple[int, int]] = []
    next_low = 0
    for low, high in merged:
        if low > next_low:
            complement.append((next_low, low - 1))
        next_low = high + 1
    if next_low <= MAX_CODE_POINT:
        complement.append((next_low, MAX_CODE_POINT))
    return complement


def utf8_sequences(code_ranges: list[tuple[int, int]]) -> list[list[ByteRange]]:
    """Byte-range sequences whose union is exactly the UTF-8 encodings of the code points in the ranges
    (surrogates excluded). Each sequence matches one byte per range."""
    out: list[list[ByteRange]] = []
    for low, high in code_ranges:
        _split(low, high, out)
    return out


def _split(low: int, high: int, out: list[list[ByteRange]]) -> None:
    if low > high:
        return
    if low <= _SURROGATES[1] and high >= _SURROGATES[0]:
        _split(low, _SURROGATES[0] - 1, out)
        _split(_SURROGATES[1] + 1, high, out)
        return
    for limit in _LENGTH_LIMITS:
        if low <= limit < high:
            _split(low, limit, out)
            _split(limit + 1, high, out)
            return
    if high <= 0x7F:
        out.append([(low, high)])
        return
    length = len(chr(low).encode("utf-8"))
    for continuation in range(1, length):
        mask = (1 << (6 * continuation)) - 1
        if low & ~mask != high & ~mask:
            if low & mask:
                _split(low, low | mask, out)
                _split((low | mask) + 1, high, out)
                return
            if high & mask != mask:
                _split(low, (high & ~mask) - 1, out)
                _split(high & ~mask, high, out)
                return
    first, last = chr(low).encode("utf-8"), chr(high).encode("utf-8")
    out.append(list(zip(first, last)))
