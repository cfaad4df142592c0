"""Long counted repetitions (`char{0,65535}`) in a few hundred rules instead of one rule per count.

GBNF's `x{0,n}` unrolls into n rules (maxLength 65,535 was refused; 2,083 took a third of a second to
compile). Here counts go in base BASE: `x` repeated BASE^j times is one rule per power, and at most n copies is
"fewer than d full top blocks, then anything shorter than a block" or "exactly d top blocks, then at most the
rest", so every count from 0 to n has exactly one reading and nothing past n has any.
"""

from __future__ import annotations

from collections.abc import Callable

from edge_runtime.grammar.json_schema.core import alt, repeat, seq

BASE = 32
LONG_REPEAT = 512
"""Counts above this use the base-BASE form; shorter ones stay plain `x{m,n}`."""

Rule = Callable[[str, str], str]
"""`rule(hint, body)`: a named rule for `body` (the compiler's, shared by equal bodies)."""


def counted(item: str, low: int, high: int | None, rule: Rule) -> str:
    """GBNF for `low` to `high` copies of `item` (None: no maximum)."""
    if max(low, high or 0) <= LONG_REPEAT:
        return repeat(item, low, high)
    powers = _Powers(item, rule)
    head = powers.exactly(low) if low else '""'
    if high is None:
        return seq(head, repeat(item, 0, None)) or '""'
    return seq(head, powers.at_most(high - low)) or '""'


class _Powers:
    def __init__(self, item: str, rule: Rule) -> None:
        self.rule = rule
        self.blocks = [item]

    def power(self, level: int) -> str:
        """`item` exactly BASE^level times."""
        while len(self.blocks) <= level:
            self.blocks.append(self.rule("block", repeat(self.blocks[-1], BASE, BASE)))
        return self.blocks[level]

    def below(self, level: int) -> str:
        """Fewer than BASE^level copies."""
        if level == 0:
            return '""'
        body = seq(repeat(self.power(level - 1), 0, BASE - 1), self.below(level - 1)) or '""'
        return self.rule("below", body)

    def at_most(self, count: int) -> str:
        if count < BASE:
            return repeat(self.power(0), 0, count)
        level = 0
        while BASE ** (level + 1) <= count:
            level += 1
        top, rest = divmod(count, BASE**level)
        fewer = seq(repeat(self.power(level), 0, top - 1), self.below(level))
        full = seq(repeat(self.power(level), top, top), self.at_most(rest))
        return self.rule("at-most", alt([fewer, full]) or '""')

    def exactly(self, count: int) -> str:
        parts = []
        level = 0
        while count:
            count, digit = divmod(count, BASE)
            if digit:
                parts.append(repeat(self.power(level), digit, digit))
            level += 1
        return seq(*reversed(parts)) or '""'
