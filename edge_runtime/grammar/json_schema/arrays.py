"""Arrays: prefixItems and items, item counts, contains, and uniqueItems over a few known values."""

from __future__ import annotations

from typing import Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.json_schema.core import (
    MAX_REPEAT,
    CompilerCore,
    alt,
    json_text,
    repeat,
    seq,
    value_key,
)

MAX_UNIQUE_DOMAIN = 8
"""Most distinct item values for which uniqueItems is enforced (one rule per subset of them used)."""


class ArrayRules(CompilerCore):
    """An array schema's rule: a prefix of positional items, the rest, minItems/maxItems, contains with
    minContains, and uniqueItems when the items are at most MAX_UNIQUE_DOMAIN known values."""

    def array(self, schema: dict[str, Any], pointer: str) -> str | None:
        # Without items, what prefixItems leaves is up to unevaluatedItems (see object()).
        unevaluated = schema.get("unevaluatedItems", True)
        items = schema.get("items", unevaluated)
        if isinstance(items, list):
            prefix, rest, rest_where = (
                items,
                schema.get("additionalItems", unevaluated),
                f"{pointer}/additionalItems",
            )
        else:
            prefix, rest, rest_where = schema.get("prefixItems") or [], items, f"{pointer}/items"
        if isinstance(prefix, (dict, bool)) and "items" not in schema:
            prefix, rest, rest_where = [], prefix, f"{pointer}/prefixItems"
        if not isinstance(prefix, list):
            raise self.invalid(pointer, "prefixItems must be an array")
        low = self.count(schema, "minItems", pointer, 0)
        high = self.count(schema, "maxItems", pointer, None)
        if schema.get("uniqueItems") is True and not (high is not None and high <= 1):
            domain = None if prefix or "contains" in schema else self.item_domain(rest, rest_where)
            if domain is not None:
                return self.unique_array(domain, low, high)
            self.unenforceable(
                "uniqueItems", pointer, "over items that are not a few known values (enum, const, boolean)"
            )
        if "contains" in schema:
            if unevaluated not in (True, {}):
                self.unenforceable("unevaluatedItems", pointer, "beside contains")
            min_contains = self.count(schema, "minContains", pointer, 1)
            simple = not prefix and high is None and low <= min_contains and "maxContains" not in schema
            if min_contains > 0 and simple:
                return self.contains_array(rest, schema["contains"], min_contains, pointer)
            if min_contains > 0 or "maxContains" in schema:
                self.unenforceable("contains", pointer)
        elements: list[str] = []
        for index, sub in enumerate(prefix):
            if high is not None and index >= high:
                break
            value = self.expr(sub, f"{pointer}/prefixItems/{index}")
            if value is None:
                high = index if high is None else min(high, index)
                break
            elements.append(value)
        rest_value = self.expr(rest, rest_where)
        if rest_value is None:
            high = len(elements) if high is None else min(high, len(elements))
        if high is not None and high < low:
            return None
        self.use_spacing()

        options = [self.enclosed("[]")] if low == 0 else []
        bounds = (low, high)
        nonempty = self.array_tail(elements, rest_value, bounds, pointer, 0) if high is None or high > 0 else None
        if nonempty is not None:
            options.append(self.enclosed("[]", nonempty))
        return self.rule("array", alt(options))

    def array_tail(
        self, elements: list[str], rest_value: str | None, bounds: tuple[int, int | None], pointer: str, index: int
    ) -> str | None:
        """Elements from `index` on when `index` of them are written (index > 0), or at least one (0): the
        positional `elements`, then `rest_value`s, within `bounds` (minItems, maxItems or None). A method, not
        a closure that calls itself: that would be a reference cycle, and the compile's objects would wait
        for a collection (holding the GIL) instead of being freed as it returns."""
        low, high = bounds
        if index >= len(elements):
            need = max(1 if index == 0 else 0, low - index)
            room = None if high is None else high - index
            if room is not None and room < need:
                return None
            if rest_value is None:
                return '""' if need == 0 else None
            if need > MAX_REPEAT or (room is not None and room > MAX_REPEAT):
                raise GrammarError(f"schema at '{pointer}': minItems/maxItems above {MAX_REPEAT}")
            following = f"{self.comma} {rest_value}"
            if index == 0:
                return f"{rest_value} {repeat(following, need - 1, None if room is None else room - 1)}"
            return repeat(following, need, room) if room != 0 else '""'
        element = elements[index] if index == 0 else f"{self.comma} {elements[index]}"
        if high is not None and index >= high:
            return '""' if index >= low else None
        present = seq(element, self.array_tail(elements, rest_value, bounds, pointer, index + 1))
        stop = '""' if index > 0 and index >= low else None
        return self.rule("items", alt([present, stop]))

    def item_domain(self, items: Any, pointer: str) -> list[Any] | None:
        """The distinct JSON values `items` accepts when there are at most MAX_UNIQUE_DOMAIN of them, known
        from const, enum, or the types boolean and null (through $ref and allOf); else None."""
        schema = self.resolved(items, pointer)
        if not isinstance(schema, dict) or "anyOf" in schema or "oneOf" in schema:
            return None
        if "const" in schema or "enum" in schema:
            candidates = self.finite_values(schema)
            if candidates is None:
                return None
        else:
            types = self.declared_types(schema, pointer)
            if not set(types) <= {"boolean", "null"}:
                return None
            candidates = ([True, False] if "boolean" in types else []) + ([None] if "null" in types else [])
        distinct = list({value_key(value): value for value in candidates}.values())
        if len(distinct) > MAX_UNIQUE_DOMAIN:
            return None
        checker = self.sub_grammar(schema, pointer)
        return [value for value in distinct if checker.matches(json_text(value))]

    def unique_array(self, domain: list[Any], low: int, high: int | None) -> str | None:
        """Arrays of distinct values from `domain` (uniqueItems): rule `<name>-<used>` continues an array whose
        values so far are the bits of `used`, so no value can come twice."""
        high = len(domain) if high is None else min(high, len(domain))
        if low > high:
            return None
        literals = [self.literal(value) for value in domain]
        base = self.new_name("unique")
        self.use_spacing()
        for used in range(1 << len(domain)):
            count = used.bit_count()
            if count == 0 or count > high:
                continue
            options = [
                f"{self.comma} {literal} {base}-{used | 1 << index}"
                for index, literal in enumerate(literals)
                if not used >> index & 1 and count < high
            ]
            if count >= low:
                options.append('""')
            self.rules[f"{base}-{used}"] = " | ".join(options)
        firsts = [f"{literal} {base}-{1 << index}" for index, literal in enumerate(literals)] if high else []
        options = ([self.enclosed("[]")] if low == 0 else []) + (
            [self.enclosed("[]", f'( {" | ".join(firsts)} )')] if firsts else []
        )
        return self.rule("array", alt(options))

    def contains_array(self, items: Any, contains: Any, count: int, pointer: str) -> str | None:
        """Arrays of `items` of which at least `count` also match `contains` (any length, no prefix)."""
        item = self.expr(items, f"{pointer}/items")
        match = self.expr({"allOf": [items, contains]}, f"{pointer}/contains")
        if item is None or match is None:
            return None
        self.use_spacing()
        following = f"( {self.comma} {item} )*"
        needing = [following]
        for _ in range(count):
            needing.append(self.rule("contains", f"{following} {self.comma} {match} {needing[-1]}"))
        start = f"( {item} {needing[count]} | {match} {needing[count - 1]} )"
        return self.rule("array", self.enclosed("[]", start))


# ------------------------------------------------------------------------------------------ public API
