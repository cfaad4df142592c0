"""Pushdown-stack semantics of a flat grammar in plain Python: the reference every faster path must agree with.

A stack is a tuple of element positions, top last; the empty stack means the whole grammar matched. Sets of
stacks are kept closed: every top is a terminal (BYTES, TOKEN, TOKEN_NOT), never a RULE or END.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edge_runtime.grammar.ir import ElementKind, FlatGrammar

Stack = tuple[int, ...]
StackSet = frozenset[Stack]

_END = int(ElementKind.END)
_BYTES = int(ElementKind.BYTES)
_RULE = int(ElementKind.RULE)
_TOKEN = int(ElementKind.TOKEN)
_TOKEN_NOT = int(ElementKind.TOKEN_NOT)


class StackMachine:
    """Steps sets of stacks by one byte or one whole token. Stateless after construction: thread-safe."""

    def __init__(self, flat: FlatGrammar) -> None:
        self.kinds: list[int] = flat.kinds.tolist()
        self.values: list[int] = flat.values.tolist()
        starts: list[int] = flat.alt_starts.tolist()
        offsets: list[int] = flat.rule_alts.tolist()
        self.rule_alts: list[list[int]] = [starts[offsets[r] : offsets[r + 1]] for r in range(flat.n_rules)]
        as_bytes = flat.byte_classes.astype(np.uint8).tobytes()
        self.byte_classes: list[bytes] = [as_bytes[row : row + 256] for row in range(0, len(as_bytes), 256)]
        packed = np.packbits(flat.byte_classes, axis=1, bitorder="little").tobytes()
        self.class_bits: list[int] = [
            int.from_bytes(packed[row : row + 32], "little") for row in range(0, len(packed), 32)
        ]
        """Per byte class, an int with bit b set when the class matches byte b."""
        self.initial: StackSet = self.closure((start,) for start in self.rule_alts[flat.root])

    def closure(self, stacks: Iterable[Stack]) -> StackSet:
        """Expand RULE tops into their alternatives and pop finished alternatives, until every top is a
        terminal. A reference that ends its alternative replaces the caller's frame (no stack growth)."""
        kinds, values, rule_alts = self.kinds, self.values, self.rule_alts
        done: set[Stack] = set()
        seen: set[Stack] = set()
        todo = list(stacks)
        while todo:
            stack = todo.pop()
            if stack in seen:
                continue
            seen.add(stack)
            if not stack:
                done.add(stack)
                continue
            position = stack[-1]
            kind = kinds[position]
            if kind == _END:
                todo.append(stack[:-1])
            elif kind == _RULE:
                below = stack[:-1] if kinds[position + 1] == _END else stack[:-1] + (position + 1,)
                todo.extend(below + (start,) for start in rule_alts[values[position]])
            else:
                done.add(stack)
        return frozenset(done)

    def top_classes(self, stacks: StackSet) -> list[bytes]:
        """The byte classes on top of the stacks: step_byte's result depends only on which of them hold a byte."""
        kinds, values = self.kinds, self.values
        rows = {values[stack[-1]] for stack in stacks if stack and kinds[stack[-1]] == _BYTES}
        return [self.byte_classes[row] for row in sorted(rows)]

    def step_byte(self, stacks: StackSet, byte: int) -> StackSet:
        kinds, values, classes = self.kinds, self.values, self.byte_classes
        moved = [
            stack[:-1] + (stack[-1] + 1,)
            for stack in stacks
            if stack and kinds[stack[-1]] == _BYTES and classes[values[stack[-1]]][byte]
        ]
        return self.closure(moved) if moved else frozenset()

    def step_token_element(self, stacks: StackSet, token_id: int) -> StackSet:
        """Advance the stacks whose top is a TOKEN / TOKEN_NOT element by one whole token."""
        kinds, values = self.kinds, self.values
        moved = []
        for stack in stacks:
            if not stack:
                continue
            kind = kinds[stack[-1]]
            if (kind == _TOKEN and values[stack[-1]] == token_id) or (
                kind == _TOKEN_NOT and values[stack[-1]] != token_id
            ):
                moved.append(stack[:-1] + (stack[-1] + 1,))
        return self.closure(moved) if moved else frozenset()

    def step_bytes(self, stacks: StackSet, data: bytes) -> StackSet:
        for byte in data:
            if not stacks:
                break
            stacks = self.step_byte(stacks, byte)
        return stacks

    def token_element_tops(self, stacks: StackSet) -> list[tuple[int, int]]:
        """(kind, token id) of every stack top that is a TOKEN or TOKEN_NOT element."""
        return [
            (self.kinds[stack[-1]], self.values[stack[-1]])
            for stack in stacks
            if stack and self.kinds[stack[-1]] in (_TOKEN, _TOKEN_NOT)
        ]

    def allowed_bytes(self, stacks: StackSet) -> int:
        """Bit b is set when some stack can take byte b next."""
        allowed = 0
        for stack in stacks:
            if stack and self.kinds[stack[-1]] == _BYTES:
                allowed |= self.class_bits[self.values[stack[-1]]]
        return allowed
