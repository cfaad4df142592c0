"""Exact GBNF for bounded JSON numbers: integer digit ranges of any width and decimal intervals.

Every function returns a GBNF expression, or None when no number satisfies the bounds. JSON forbids leading
zeros, so each range is split by digit count; `-0` (and `-0.0`) is zero, allowed wherever zero is.
"""

from __future__ import annotations

from decimal import Decimal

_ANY_DIGITS = "[0-9]*"


def _alt(options: list[str]) -> str | None:
    kept = list(dict.fromkeys(options))
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else "(" + " | ".join(kept) + ")"


def _digit_class(low: str, high: str) -> str:
    return f'"{low}"' if low == high else f"[{low}-{high}]"


def _same_length_range(low: str, high: str) -> str:
    """Digit strings of len(low) == len(high) between them, inclusive (leading zeros allowed)."""
    if not low:
        return '""'
    if low[0] == high[0]:
        rest = _same_length_range(low[1:], high[1:]) if len(low) > 1 else None
        return f'"{low[0]}"' + (f" {rest}" if rest else "")
    tail = len(low) - 1
    if low[1:] == "0" * tail and high[1:] == "9" * tail:
        return _digit_class(low[0], high[0]) + (f" [0-9]{{{tail}}}" if tail else "")
    options = []
    if low[1:] == "0" * tail:
        first = low[0]
    else:
        options.append(f'"{low[0]}" {_same_length_range(low[1:], "9" * tail)}')
        first = chr(ord(low[0]) + 1)
    if high[1:] == "9" * tail:
        last = high[0]
    else:
        last = chr(ord(high[0]) - 1)
    if first <= last:
        options.append(_digit_class(first, last) + (f" [0-9]{{{tail}}}" if tail else ""))
    if high[1:] != "9" * tail:
        options.append(f'"{high[0]}" {_same_length_range("0" * tail, high[1:])}')
    return _alt(options) or '""'


def natural_range(low: int, high: int | None) -> str | None:
    """Natural numbers in [low, high] (high None: unbounded) written without leading zeros."""
    low = max(low, 0)
    if high is not None and high < low:
        return None
    options = []
    width = len(str(low))
    last_width = len(str(high)) if high is not None else width
    for digits in range(width, last_width + 1):
        start = max(low, 10 ** (digits - 1) if digits > 1 else 0)
        end = 10**digits - 1 if high is None else min(high, 10**digits - 1)
        if start <= end:
            options.append(_same_length_range(str(start).zfill(digits), str(end)))
    if high is None:
        options.append(f"[1-9] [0-9]{{{width},}}")
    return _alt(options)


def integer_range(low: int | None, high: int | None) -> str | None:
    """JSON integers in [low, high] (None: unbounded on that side), `-0` included when 0 is in range."""
    if low is not None and high is not None and high < low:
        return None
    options = []
    if high is None or high >= 0:
        positive = natural_range(max(low or 0, 0) if low is not None else 0, high)
        if positive:
            options.append(positive)
    if low is None or low <= 0:
        least_magnitude = 0 if high is None or high >= 0 else -high
        negative = natural_range(least_magnitude, None if low is None else -low)
        if negative:
            options.append(f'"-" {negative}')
    return _alt(options)


# ------------------------------------------------------------------------------------------ decimals


def _fraction_digits(value: Decimal) -> str:
    """The digits after the point of 0 <= value < 1, without trailing zeros."""
    text = format(value, "f")
    return text.partition(".")[2].rstrip("0")


Bound = tuple[str, bool] | None
"""A bound on 0.d: (digits without trailing zeros, inclusive), or None for no bound."""


def _after_digit(bound: Bound, digit: str, lower: bool) -> tuple[bool, Bound]:
    """Whether 0.d can still meet `bound` once d starts with `digit`, and the bound left on the rest."""
    if bound is None:
        return True, None
    digits, inclusive = bound
    first = digits[0] if digits else "0"
    if digit != first:
        return (digit > first) == lower, None
    rest = (digits[1:], inclusive)
    return True, None if lower and rest == ("", True) else rest


def _any_fraction(places: int | None) -> str:
    """Any non-empty digits after a point, with at most `places` of them significant."""
    return "[0-9]+" if places is None else f'[0-9]{{1,{places}}} "0"*'


def _nonzero_fraction(places: int | None) -> str:
    """Non-empty digits after a point that are not all zero, with at most `places` of them significant."""
    if places is None:
        return '"0"* [1-9] [0-9]*'
    options = [
        ('"0"' + (f"{{{zeros}}} " if zeros > 1 else " ") if zeros else "")
        + "[1-9]"
        + (f" [0-9]{{0,{places - 1 - zeros}}}" if places - 1 - zeros else "")
        for zeros in range(places)
    ]
    return "(" + " | ".join(options) + ') "0"*'


def fraction_digits(low: Bound, high: Bound, places: int | None = None) -> tuple[bool, str | None]:
    """Digit strings d after a decimal point (d may be empty: no fraction) with low <(=) 0.d <(=) high and
    no nonzero digit after the first `places` (None: no limit): (whether the empty string is in, an expression
    for the non-empty ones or None)."""
    if low == ("", True):
        low = None
    if high == ("", False) or (high == ("", True) and low is not None):
        return False, None
    if high == ("", True):
        return True, '"0"+'
    if places == 0:
        return (True, '"0"+') if low is None else (False, None)
    if high is None:
        if low is None:
            return True, _any_fraction(places)
        if low == ("", False):
            return False, _nonzero_fraction(places)
    empty_ok = low is None
    groups: dict[tuple[Bound, Bound], list[str]] = {}
    for digit in "0123456789":
        low_alive, next_low = _after_digit(low, digit, lower=True)
        high_alive, next_high = _after_digit(high, digit, lower=False)
        if low_alive and high_alive:
            groups.setdefault((next_low, next_high), []).append(digit)
    options = []
    for (next_low, next_high), digits in groups.items():
        head = _digit_class(digits[0], digits[-1])
        tail_empty, tail = fraction_digits(next_low, next_high, None if places is None else places - 1)
        if tail is None:
            if tail_empty:
                options.append(head)
        else:
            options.append(f"{head} ({tail})?" if tail_empty else f"{head} {tail}")
    return empty_ok, _alt(options)


def _with_fraction(integer: int, fraction: tuple[bool, str | None]) -> str | None:
    """An integer part followed by an optional `.digits` from the fraction language."""
    empty, rest = fraction
    if rest is None:
        return f'"{integer}"' if empty else None
    return f'"{integer}" ("." {rest})' + ("?" if empty else "")


def _magnitudes(
    low: Decimal, low_inclusive: bool, high: Decimal | None, high_inclusive: bool, places: int | None
) -> str | None:
    """Unsigned decimals (no exponent) with low <(=) value <(=) high, 0 <= low, and at most `places`
    significant fraction digits."""
    low_int = int(low)
    low_frac = _fraction_digits(low - low_int)
    if high is not None:
        high_int = int(high)
        high_frac = _fraction_digits(high - high_int)
        if high < low or (high == low and not (low_inclusive and high_inclusive)):
            return None
        if low_int == high_int:
            return _with_fraction(
                low_int, fraction_digits((low_frac, low_inclusive), (high_frac, high_inclusive), places)
            )
    options = []
    low_part = _with_fraction(low_int, fraction_digits((low_frac, low_inclusive), None, places))
    if low_part:
        options.append(low_part)
    middle = natural_range(low_int + 1, None if high is None else int(high) - 1)
    if middle:
        options.append(f'{middle} ("." {_any_fraction(places)})?')
    if high is not None:
        high_int = int(high)
        high_part = _with_fraction(
            high_int, fraction_digits(None, (_fraction_digits(high - high_int), high_inclusive), places)
        )
        if high_part:
            options.append(high_part)
    return _alt(options)


def decimal_range(
    low: Decimal | None, low_inclusive: bool, high: Decimal | None, high_inclusive: bool,
    places: int | None = None,
) -> str | None:
    """JSON numbers without exponent in the interval, with at most `places` significant fraction digits (the
    multiples of 10^-places; None: any); `-0`, `-0.0` count as zero."""
    options = []
    if high is None or high > 0 or (high == 0 and high_inclusive):
        if low is None or low < 0:
            start, start_inclusive = Decimal(0), True
        else:
            start, start_inclusive = low, low_inclusive
        positive = _magnitudes(start, start_inclusive, high, high_inclusive, places)
        if positive:
            options.append(positive)
    if low is None or low < 0 or (low == 0 and low_inclusive):
        if high is None or high > 0:
            least, least_inclusive = Decimal(0), True
        else:
            least, least_inclusive = -high, high_inclusive
        negative = _magnitudes(least, least_inclusive, None if low is None else -low, low_inclusive, places)
        if negative:
            options.append(f'"-" {negative}')
    return _alt(options)
