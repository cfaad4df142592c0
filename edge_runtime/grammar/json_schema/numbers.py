"""Numbers: bounds as exact digit ranges (number_ranges.py) and multipleOf as remainder automata or lists."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from edge_runtime.grammar.json_schema.core import CompilerCore, alt
from edge_runtime.grammar.json_schema.keywords import FRACTIONAL, NOT_MULTIPLE_OF
from edge_runtime.grammar.json_schema.number_ranges import decimal_range, integer_range

MAX_MODULUS = 1000
"""Largest whole multipleOf step compiled to a remainder automaton (one rule per remainder)."""
MAX_LISTED_MULTIPLES = 1000
"""Most multiples of a step between two bounds that a grammar lists one by one."""


class NumberRules(CompilerCore):
    """A number or integer schema's rule: minimum/maximum (inclusive or exclusive) and multipleOf."""

    def number(self, schema: dict[str, Any], pointer: str, integer: bool) -> str | None:
        bounds: dict[str, Decimal] = {}
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if key in schema:
                value = schema[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise self.invalid(pointer, f"{key} must be a number")
                bounds[key] = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        low, low_inclusive = self.bound(bounds, "minimum", "exclusiveMinimum", lower=True)
        high, high_inclusive = self.bound(bounds, "maximum", "exclusiveMaximum", lower=False)
        if schema.get(FRACTIONAL) is True:
            return self.fractional(schema, pointer, integer, bounded=bool(bounds))
        if NOT_MULTIPLE_OF in schema:
            return self.not_multiple(schema, pointer, integer, bounded=bool(bounds))
        if "multipleOf" in schema:
            step = schema["multipleOf"]
            if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
                raise self.invalid(pointer, "multipleOf must be a number above 0")
            sign = self.zero_bounded(low, low_inclusive, high, high_inclusive)
            multiples = self.multiples(Decimal(str(step)), integer, sign)
            if multiples is not None:
                return multiples
            bounded = self.bounded_multiples(Decimal(str(step)), integer, low, low_inclusive, high, high_inclusive)
            if bounded is not None:
                return self.rule("multiple", bounded or None)
            if step == 1:
                integer = True
            elif not (integer and (1 / Decimal(str(step))) % 1 == 0):
                self.unenforceable("multipleOf", pointer, "beside bounds, or with this step")
        if integer:
            if low is None and high is None:
                return self.use("integer")
            low_int = (
                None
                if low is None
                else math.ceil(low) + (1 if not low_inclusive and low == math.ceil(low) else 0)
            )
            high_int = (
                None
                if high is None
                else math.floor(high) - (1 if not high_inclusive and high == math.floor(high) else 0)
            )
            return self.rule("int", integer_range(low_int, high_int))
        if low is None and high is None:
            return self.use("number")
        return self.rule("num", decimal_range(low, low_inclusive, high, high_inclusive))

    def fractional(self, schema: dict[str, Any], pointer: str, integer: bool, bounded: bool) -> str | None:
        """The numbers that are not integers (what not `{"type": "integer"}` leaves of numbers): a fraction with
        a digit other than 0, without exponent (a narrowing: 1.5e1 is not written). Beside bounds or
        multipleOf, refused."""
        if integer:
            return None
        if bounded or "multipleOf" in schema:
            self.unenforceable("not", pointer, "excluding integers from numbers with bounds or multipleOf")
            return self.use("number")
        return self.rule("frac", '"-"? ( "0" | [1-9] [0-9]* ) "." "0"* [1-9] [0-9]*')

    def not_multiple(self, schema: dict[str, Any], pointer: str, integer: bool, bounded: bool) -> str | None:
        """The numbers that are no multiple of some whole steps (not `{"multipleOf": m}`, one m each):
        integers leaving a remainder (a remainder automaton, with a whole multipleOf beside them), and the
        fractions unless `integer` or that multipleOf. Refused beside bounds, or when the steps' least common
        multiple is above MAX_MODULUS."""
        steps, other = schema[NOT_MULTIPLE_OF], schema.get("multipleOf", 1)
        whole = isinstance(steps, list) and all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in (*steps, other)
        )
        modulus = math.lcm(*steps, other) if whole else 0
        if bounded or not 0 < modulus <= MAX_MODULUS:
            self.unenforceable("not", pointer, "excluding multiples beside bounds or of this step")
            return self.use("integer" if integer else "number")
        options: list[str | None] = []
        if 1 not in steps and modulus > other:  # some multiple of `other` may be none of `steps`
            excluded = tuple(sorted(set(steps)))
            options.append(f'"-"? {self.remainder_rules(modulus, of=other, excluded=excluded)}')
        if not integer and other == 1:  # a fraction is no multiple of a whole step
            options.append(self.fractional(schema, pointer, integer, bounded))
        return self.rule("notmul", alt(options))

    def multiples(self, step: Decimal, integer: bool, sign: str | None) -> str | None:
        """Numbers that are multiples of `step` when a grammar says it alone, with no bounds (`sign` "any") or
        with zero as the only bound ("nonnegative", "positive", "nonpositive", "negative"; None: other bounds).
        With step = a * 10^-n: an integer is a multiple when it is one of a / gcd(a, 10^n) (a remainder
        automaton over its digits); a decimal when its digits, the point dropped and padded to n fraction
        digits, spell a multiple of a (a remainder automaton that also counts fraction digits; for a = 1 simply
        at most n of them)."""
        if sign is None or step == 1:
            return None
        numerator, places = _decimal_parts(step)
        modulus = numerator // math.gcd(numerator, 10**places) if integer else numerator
        if (integer or places == 0) and 1 < modulus <= MAX_MODULUS:
            unsigned, nonzero = self.remainder_rules(modulus), self.remainder_rules(modulus, zero=False)
            signed = {
                "any": f'"-"? {unsigned}',
                "nonnegative": unsigned,
                "positive": nonzero,
                "nonpositive": f'"-" {nonzero} | "0"',
                "negative": f'"-" {nonzero}',
            }
            return self.rule("multiple", signed[sign])
        if integer or sign not in ("any", "nonnegative"):
            return None
        prefix = '"-"? ' if sign == "any" else ""
        if numerator == 1:
            return self.rule("multiple", f'{prefix}( "0" | [1-9] [0-9]* ) ( "." [0-9]{{1,{places}}} "0"* )?')
        if numerator * (places + 1) <= MAX_MODULUS:
            return self.rule("multiple", prefix + self.decimal_remainder_rules(numerator, places))
        return None

    @staticmethod
    def zero_bounded(
        low: Decimal | None, low_inclusive: bool, high: Decimal | None, high_inclusive: bool
    ) -> str | None:
        """The sign bounds leave when zero is their only value ("any" without bounds), else None."""
        if low is None and high is None:
            return "any"
        if high is None and low == 0:
            return "nonnegative" if low_inclusive else "positive"
        if low is None and high == 0:
            return "nonpositive" if high_inclusive else "negative"
        return None

    def decimal_remainder_rules(self, modulus: int, places: int) -> str:
        """Decimals without sign whose digits (point dropped, padded with zeros to `places` fraction digits)
        spell a multiple of `modulus`: rule `dmod<m>p<p>-<r>-<j>` reads the rest after a prefix leaving
        remainder r with j fraction digits read (`i`: still in the integer part). States that can never end
        get no rule and no reference."""
        State = tuple[int, int | None]

        def name(state: State) -> str:
            remainder, read = state
            return f"dmod{modulus}p{places}-{remainder}-{'i' if read is None else read}"

        def moves(state: State) -> dict[State, list[str]]:
            remainder, read = state
            found: dict[State, list[str]] = {}
            if read is None or read < places:
                following = None if read is None else read + 1
                for digit in range(10):
                    found.setdefault(((remainder * 10 + digit) % modulus, following), []).append(str(digit))
            if read is None:
                found.setdefault((remainder, 0), []).append(".")
            return found

        def ends(state: State) -> str | None:
            remainder, read = state
            if read == places:
                return '"0"*' if remainder == 0 else None
            if read == 0:
                return None
            return '""' if remainder * 10 ** (places - (read or 0)) % modulus == 0 else None

        states: list[State] = [(r, read) for r in range(modulus) for read in [None, *range(places + 1)]]
        alive = {state for state in states if ends(state) is not None}
        grew = True
        while grew:
            grew = False
            for state in states:
                if state not in alive and any(target in alive for target in moves(state)):
                    alive.add(state)
                    grew = True

        def options(state: State) -> list[str]:
            found = []
            for target, labels in moves(state).items():
                if target in alive:
                    head = '"."' if labels == ["."] else f"[{''.join(labels)}]"
                    found.append(f"{head} {name(target)}")
            end_option = ends(state)
            return found + ([end_option] if end_option is not None else [])

        for state in states:
            if state in alive:
                self.rules.setdefault(name(state), " | ".join(options(state)))
        starts: dict[State, list[str]] = {}
        for digit in range(1, 10):
            starts.setdefault((digit % modulus, None), []).append(str(digit))
        firsts = [f"[{''.join(digits)}] {name(target)}" for target, digits in starts.items() if target in alive]
        zero = f'"0" ( "." {name((0, 0))} )?' if (0, 0) in alive else '"0"'
        return "( " + " | ".join([zero, *firsts]) + " )"

    def bounded_multiples(
        self, step: Decimal, integer: bool, low: Decimal | None, low_inclusive: bool, high: Decimal | None,
        high_inclusive: bool,
    ) -> str | None:
        """Multiples of `step` between bounds, when a grammar says it: steps 10^-k as a decimal range with at
        most k fraction digits, other steps by listing the multiples when both bounds are given and there are
        at most MAX_LISTED_MULTIPLES of them. "" when no number qualifies; None when this cannot be said."""
        numerator, places = _decimal_parts(step)
        if not integer and numerator == 1 and places > 0:
            return decimal_range(low, low_inclusive, high, high_inclusive, places=places) or ""
        if low is None or high is None:
            return None
        first = math.ceil(low / step)
        if not low_inclusive and first * step == low:
            first += 1
        last = math.floor(high / step)
        if not high_inclusive and last * step == high:
            last -= 1
        if last - first + 1 > MAX_LISTED_MULTIPLES:
            return None
        values = [step * k for k in range(first, last + 1)]
        if integer:
            values = [value for value in values if value == value.to_integral_value()]
        return " | ".join(f'"{format(value.normalize(), "f")}"' for value in values)

    def remainder_rules(self, modulus: int, *, zero: bool = True, of: int = 0, excluded: tuple[int, ...] = ()) -> str:
        """Integers without sign divisible by `modulus` (zero among them unless not `zero`); with `of` and
        `excluded` (divisors of `modulus`), those that are multiples of `of` and of none of `excluded`: rule
        `mod<m>-<r>` (`mod<m>o<of>n<excluded>-<r>`) reads the rest of the digits after a prefix whose value
        leaves remainder r."""
        divisible = not excluded
        tag = "" if divisible else f"o{of}n{'n'.join(map(str, excluded))}"
        names = [f"mod{modulus}{tag}-{r}" for r in range(modulus)]
        for remainder, name in enumerate(names):
            targets: dict[int, list[int]] = {}
            for digit in range(10):
                targets.setdefault((remainder * 10 + digit) % modulus, []).append(digit)
            ends = remainder == 0 if divisible else remainder % of == 0 and all(remainder % e for e in excluded)
            options = ['""'] if ends else []
            options += [
                f"[{''.join(map(str, digits))}] {names[target]}" for target, digits in targets.items()
            ]
            self.rules.setdefault(name, " | ".join(options))
        starts: dict[int, list[int]] = {}
        for digit in range(1, 10):
            starts.setdefault(digit % modulus, []).append(digit)
        firsts = [f"[{''.join(map(str, digits))}] {names[target]}" for target, digits in starts.items()]
        return "( " + " | ".join(['"0"', *firsts] if zero and divisible else firsts) + " )"

    @staticmethod
    def bound(
        bounds: dict[str, Decimal], inclusive_key: str, exclusive_key: str, lower: bool
    ) -> tuple[Decimal | None, bool]:
        inclusive = bounds.get(inclusive_key)
        exclusive = bounds.get(exclusive_key)
        if inclusive is None:
            return exclusive, exclusive is None
        if exclusive is None:
            return inclusive, True
        if lower:
            return (exclusive, False) if exclusive >= inclusive else (inclusive, True)
        return (exclusive, False) if exclusive <= inclusive else (inclusive, True)

def _decimal_parts(value: Decimal) -> tuple[int, int]:
    """(a, n) with value == a * 10^-n, a a positive integer and n >= 0 as small as can be."""
    _, digits, exponent = value.normalize().as_tuple()
    if not isinstance(exponent, int):
        raise TypeError(f"{value} is not a finite number")
    numerator = int("".join(map(str, digits)))
    if exponent >= 0:
        return numerator * 10**exponent, 0
    return numerator, -exponent
