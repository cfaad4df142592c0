"""Grammar-independent names for sets of pushdown stacks.

Two stack sets with the same key describe the same rooted sub-grammar (rules renumbered in the order a
breadth-first walk from the stacks meets them, byte classes spelled out, token ids kept), so they step alike on
every byte whatever grammar they come from. Work that depends only on how a stack set steps (a walk of the
vocabulary trie) can then be shared across grammars: every schema's string body, say, is walked once per model.
"""

from __future__ import annotations

from edge_runtime.grammar.ir import ElementKind
from edge_runtime.grammar.stacks import Stack, StackMachine, StackSet

_END = int(ElementKind.END)
_BYTES = int(ElementKind.BYTES)
_RULE = int(ElementKind.RULE)


class StackKeys:
    """Keys for one grammar's stack sets. Equal keys mean isomorphic sub-grammars (never a false match); an
    isomorphic pair may still get two keys when its stacks sort differently, which costs a cache miss only."""

    def __init__(self, machine: StackMachine) -> None:
        self.machine = machine
        self._place: dict[int, tuple[int, int, int]] = {}
        """Element position -> (rule, alternative, offset in the alternative)."""
        kinds = machine.kinds
        for rule, starts in enumerate(machine.rule_alts):
            for alternative, start in enumerate(starts):
                position = start
                while True:
                    self._place[position] = (rule, alternative, position - start)
                    if kinds[position] == _END:
                        break
                    position += 1

    def key(self, stacks: StackSet) -> bytes:
        machine = self.machine
        kinds, values, class_bits = machine.kinds, machine.values, machine.class_bits
        numbers: dict[int, int] = {}
        order: list[int] = []

        def number(rule: int) -> int:
            found = numbers.get(rule)
            if found is None:
                found = numbers[rule] = len(order)
                order.append(rule)
            return found

        out: list[object] = []
        for stack in sorted(stacks, key=self._sort_key):
            out.append(("stack", len(stack)))
            for position in stack:
                rule, alternative, offset = self._place[position]
                out.append((number(rule), alternative, offset))
        done = 0
        while done < len(order):
            rule = order[done]
            done += 1
            out.append(("rule", len(machine.rule_alts[rule])))
            for start in machine.rule_alts[rule]:
                position = start
                while kinds[position] != _END:
                    kind, value = kinds[position], values[position]
                    if kind == _RULE:
                        out.append((kind, number(value)))
                    elif kind == _BYTES:
                        out.append((kind, class_bits[value]))
                    else:
                        out.append((kind, value))
                    position += 1
                out.append(_END)
        return repr(out).encode()

    def _sort_key(self, stack: Stack) -> tuple[tuple[int, int, int, int], ...]:
        """A grammar-independent order for the stacks of a set: each position by its element and its place."""
        kinds, values, class_bits = self.machine.kinds, self.machine.values, self.machine.class_bits
        key = []
        for position in stack:
            kind, value = kinds[position], values[position]
            _, alternative, offset = self._place[position]
            shown = class_bits[value] if kind == _BYTES else (-1 if kind == _RULE else value)
            key.append((kind, shown, alternative, offset))
        return tuple(key)
