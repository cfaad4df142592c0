"""Objects: properties in schema order, required and dependentRequired, extra keys and property counts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.gbnf_text import gbnf_literal
from edge_runtime.grammar.json_schema.char_dfa import CharDfa, dfa_to_gbnf, intersection
from edge_runtime.grammar.json_schema.char_sets import MAX_CODE_POINT, complement, json_char_set
from edge_runtime.grammar.json_schema.core import MAX_REPEAT, CompilerCore, alt, repeat, seq
from edge_runtime.grammar.json_schema.key_classes import (
    PatternProperty,
    Witness,
    key_classes,
    pattern_properties,
    property_names_dfa,
    witness_of,
)
from edge_runtime.grammar.json_schema.keywords import SOME_PROPERTY

MAX_DEPENDENCIES = 8
"""dependentRequired triggers per object (each one multiplies the object's rules in the worst case)."""
MAX_COUNTING_STATES = 4096
"""Bound on (declared properties x property counts) rules for minProperties/maxProperties."""


@dataclass(frozen=True)
class _Member:
    """A declared property: its `"name": value` rule (None when no value is allowed) and whether required."""

    name: str
    kv: str | None
    required: bool
    witness_kv: str | None = None
    """With the object's witness (SOME_PROPERTY): this property written as the witness, else None."""


@dataclass(frozen=True)
class _Counts:
    """minProperties / maxProperties (None: no maximum)."""

    low: int
    high: int | None


class _KeyTrie:
    """Canonical key encodings of the declared property names, by JSON string unit."""

    def __init__(self) -> None:
        self.children: dict[str, _KeyTrie] = {}
        self.terminal = False

    def add(self, units: list[str]) -> None:
        node = self
        for unit in units:
            node = node.children.setdefault(unit, _KeyTrie())
        node.terminal = True


def _key_units(name: str) -> list[str]:
    """One unit per character of `name` as it is written in a canonical JSON key."""
    return [json.dumps(char, ensure_ascii=False)[1:-1] for char in name]


_KEY_ESCAPES = [json.dumps(chr(code))[1:-1] for code in range(0x20)] + ['\\"', "\\\\"]

class ObjectRules(CompilerCore):
    """An object schema's rule: declared properties in schema order, required ones, dependentRequired, extra
    properties under keys that differ from every declared name (a key trie; with patternProperties or
    propertyNames, key automata per class of keys, key_classes.py), and the property counts."""

    def object(self, schema: dict[str, Any], pointer: str) -> str | None:
        if schema.get("dependentSchemas"):
            self.unenforceable("dependentSchemas", pointer)
        patterns = self.pattern_properties(schema, pointer)
        names_schema = schema.get("propertyNames", True)
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(properties, dict):
            raise self.invalid(pointer, "properties must be an object")
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise self.invalid(pointer, "required must be an array of strings")
        dependencies = self.dependent_required(schema, pointer)
        # Without additionalProperties, what no sibling evaluates is left to unevaluatedProperties (allOf
        # and $ref are merged into this schema by now; a branch holding its own was refused).
        extra_schema = schema.get("additionalProperties", schema.get("unevaluatedProperties", True))
        low = self.count(schema, "minProperties", pointer, 0)
        high = self.count(schema, "maxProperties", pointer, None)
        declared: dict[str, tuple[Any, str]] = {
            name: (sub, f"{pointer}/properties/{name}") for name, sub in properties.items()
        }
        # Names that only required or dependentRequired mention take their place after the properties.
        mentioned = [*required, *(n for trigger, needs in dependencies.items() for n in (*needs, trigger))]
        for name in mentioned:
            matching = [p.schema for p in patterns if p.dfa.matches(name)]
            declared.setdefault(
                name,
                ({"allOf": matching}, f"{pointer}/patternProperties")
                if matching
                else (extra_schema, f"{pointer}/additionalProperties"),
            )
        if self.closes(schema, len(declared), low):
            extra_schema = False
        witness = self.witness(schema, pointer, dependencies)
        allowed = None
        if names_schema not in (True, {}) and (declared or patterns or witness):
            allowed = self.names_dfa(names_schema, pointer)
        members: list[_Member] = []
        for name, (sub, where) in declared.items():
            matching = [p.schema for p in patterns if p.dfa.matches(name) and name in properties]
            if allowed is not None and not allowed.matches(name):
                sub = False
            value = self.expr({"allOf": [sub, *matching]} if matching else sub, where)
            if value is None and name in required:
                return None
            key = gbnf_literal(json.dumps(name, ensure_ascii=False))
            kv = None if value is None else self.rule("kv", f'{key} ":" ws {value}')
            witness_kv = None
            if witness is not None and witness.keys.matches(name):
                found = self.expr({"allOf": [sub, *matching, witness.value]}, where)
                witness_kv = None if found is None else self.rule("kv", f'{key} ":" ws {found}')
            members.append(_Member(name, kv, name in required, witness_kv))
        self.use("ws")
        extra_value = (
            None if extra_schema is False else self.expr(extra_schema, f"{pointer}/additionalProperties")
        )
        extra = None
        witness_extra = None
        if witness is not None:
            witness_extra = self.classed_extras(
                patterns, list(declared), allowed, extra_value, witness, extra_schema, pointer
            )
            if witness_extra is None and not any(m.witness_kv for m in members):
                return None  # no property can be the witness
        if patterns or allowed is not None:
            extra = self.classed_extras(patterns, list(declared), allowed, extra_value)
        else:
            extra_key = self.extra_key(list(declared), names_schema, pointer)
            if extra_value is not None and extra_key is not None:
                extra = self.rule("kv", f'{extra_key} ":" ws {extra_value}')
        counted = high if high is not None else low
        if counted and len(members) * (counted + 2) > MAX_COUNTING_STATES:
            self.unenforceable(
                "maxProperties" if high is not None else "minProperties",
                pointer,
                f"counting to {counted} over {len(members)} properties takes too many rules",
            )
            low, high = 0, None
        return self.object_rule(members, extra, _Counts(low, high), dependencies, witness_extra)

    def pattern_properties(self, schema: dict[str, Any], pointer: str) -> list[PatternProperty]:
        """patternProperties with their automata ([] when absent); refused by name when a pattern has none."""
        if not schema.get("patternProperties"):
            return []
        try:
            return pattern_properties(schema, pointer)
        except GrammarError as exc:
            self.unenforceable("patternProperties", pointer, exc.reason)
            return []

    def names_dfa(self, names_schema: Any, pointer: str) -> CharDfa | None:
        """propertyNames as a key automaton, for objects with declared names or patterns; refused by name
        when it has none (without declared names or patterns, extra_key() writes it as a schema)."""
        try:
            found = property_names_dfa(names_schema)
        except GrammarError:
            found = None
        if found is None:
            self.unenforceable("propertyNames", pointer, "beside declared properties or patternProperties")
        return found

    def classed_extras(
        self,
        patterns: list[PatternProperty],
        declared: list[str],
        allowed: CharDfa | None,
        extra_value: str | None,
        witness: Witness | None = None,
        extra_schema: Any = True,
        pointer: str = "",
    ) -> str | None:
        """One `"key": value` rule over every class of undeclared keys (see key_classes.py); with `witness`,
        over the keys it names only, each value also meeting its schema."""
        options = []
        for keys in key_classes(patterns, declared, allowed):
            dfa = keys.dfa
            if witness is None:
                value = self.expr({"allOf": list(keys.schemas)}, keys.pointers[0]) if keys.schemas else extra_value
            else:
                dfa = intersection(dfa, witness.keys)
                own = list(keys.schemas) if keys.schemas else [extra_schema]
                value = None if dfa.empty else self.expr({"allOf": [*own, witness.value]}, pointer)
            if value is None:
                continue
            content = dfa_to_gbnf(dfa, self.new_name, self.rules.__setitem__, canonical=True)
            if content is not None:
                options.append(self.rule("kv", f'"\\"" {content} "\\"" ":" ws {value}'))
        return self.rule("kv", alt(options))

    def witness(self, schema: dict[str, Any], pointer: str, dependencies: dict[str, Any]) -> Witness | None:
        """The property this object must have (SOME_PROPERTY, what negations of additionalProperties,
        patternProperties and propertyNames write), with its key automaton; refused beside property counts
        or dependentRequired (which it would multiply)."""
        spec = schema.get(SOME_PROPERTY)
        if spec is None:
            return None
        found = witness_of(spec)
        if found is None or dependencies or "minProperties" in schema or "maxProperties" in schema:
            self.unenforceable("not", pointer, "a property some key must have, beside these keywords")
            return None
        return found

    def closes(self, schema: dict[str, Any], n_declared: int, min_properties: int) -> bool:
        """Whether this object gets no extra properties though its schema allows them (closed_objects):
        it declares properties, says nothing of extras, and can reach minProperties without them."""
        return (
            self.closed_objects
            and bool(schema.get("properties"))
            and "additionalProperties" not in schema
            and "unevaluatedProperties" not in schema
            and min_properties <= n_declared
        )

    def dependent_required(self, schema: dict[str, Any], pointer: str) -> dict[str, tuple[str, ...]]:
        """dependentRequired, with the name-list entries of draft 7's `dependencies` (its schema entries
        are dependentSchemas, which no grammar here enforces)."""
        found = schema.get("dependentRequired", {})
        legacy = schema.get("dependencies", {})
        if isinstance(legacy, dict) and isinstance(found, dict):
            if any(not isinstance(needs, list) for needs in legacy.values()):
                self.unenforceable("dependencies", pointer, "its schema entries")
            found = {**{k: v for k, v in legacy.items() if isinstance(v, list)}, **found}
        if not isinstance(found, dict) or not all(
            isinstance(needs, list) and all(isinstance(n, str) for n in needs) for needs in found.values()
        ):
            raise self.invalid(pointer, "dependentRequired must map names to arrays of names")
        if len(found) > MAX_DEPENDENCIES:
            self.unenforceable("dependentRequired", pointer, f"more than {MAX_DEPENDENCIES} dependencies")
            return {}
        return {trigger: tuple(needs) for trigger, needs in found.items() if needs}

    def extra_key(self, declared: list[str], names_schema: Any, pointer: str) -> str | None:
        """The key of an extra property: not a declared name, and valid under propertyNames."""
        if names_schema in (True, {}):
            return self.key_not_in(declared)
        where = f"{pointer}/propertyNames"
        if declared:
            self.unenforceable("propertyNames", pointer, "beside declared properties")
            return self.key_not_in(declared)
        return self.expr({"allOf": [names_schema, {"type": "string"}]}, where)

    def key_not_in(self, names: list[str]) -> str:
        """A JSON key (canonical form, quotes included) that is none of `names`."""
        key = ("key-not-in", *names)
        if key not in self.made:
            trie = _KeyTrie()
            for name in names:
                trie.add(_key_units(name))
            self.made[key] = f'"\\"" {self.key_node(trie)}'
        return str(self.made[key])

    def key_node(self, node: _KeyTrie) -> str:
        tail = self.rule("key-tail", f'{self.use("key-char")}* "\\""')
        options = [] if node.terminal else ['"\\""']
        raw_children = [unit for unit in node.children if not unit.startswith("\\")]
        escape_children = {unit for unit in node.children if unit.startswith("\\")}
        excluded = [(ord(c), ord(c)) for c in raw_children] + [(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]
        if all(ord(c) < 0x80 for c in raw_children):
            # Past ASCII every node deviates alike: one shared rule instead of a Unicode class per node.
            ascii_class = json_char_set(complement((*excluded, (0x80, MAX_CODE_POINT))))
            raw_class = alt([ascii_class, self.use("key-wide")])
        else:
            raw_class = json_char_set(complement(tuple(excluded)))
        if raw_class:
            options.append(f"{raw_class} {tail}")
        free_escapes = [e for e in _KEY_ESCAPES if e not in escape_children]
        if escape_children:
            options += [f"{gbnf_literal(e)} {tail}" for e in free_escapes]
        else:
            options.append(f"{self.use('key-escape')} {tail}")
        for unit, child in node.children.items():
            options.append(f"{gbnf_literal(unit)} {self.key_node(child)}")
        return self.rule("key", " | ".join(options))

    def object_rule(
        self,
        members: list[_Member],
        extra: str | None,
        counts: _Counts,
        dependencies: dict[str, tuple[str, ...]],
        witness_extra: str | None = None,
    ) -> str | None:
        """Members in order, each present or (unless required) skipped, then the extra properties, with
        the property count in bounds and every present dependentRequired trigger's names present. With a
        witness (a member's `witness_kv`, or `witness_extra`), one property must be written as it."""
        low, high = counts.low, counts.high
        cap = high if high is not None else low
        position = {member.name: index for index, member in enumerate(members)}
        memo: dict[tuple[int, int, bool, frozenset[str], frozenset[str], bool], str | None] = {}
        witnessed = witness_extra is not None or any(member.witness_kv for member in members)

        def tail(
            index: int, count: int, first: bool, pending: frozenset[str], barred: frozenset[str], owed: bool
        ) -> str | None:
            """Members from `index` on, `count` written so far; `first`: none yet and one is needed;
            `pending`: names that must still come; `barred`: names that must not (a need was skipped);
            `owed`: the witness is still to come."""
            if high is not None and count > high:
                return None
            key = (index, min(count, cap + 1), first, pending, barred, owed)
            if key in memo:
                return memo[key]
            if index == len(members):
                if pending:
                    result = None
                elif owed:
                    result = self.witness_members(extra, witness_extra, first)
                else:
                    result = self.extra_members(extra, count, first, counts)
            else:
                member = members[index]
                options: list[str | None] = []
                if member.name not in barred:
                    needs = {n for n in dependencies.get(member.name, ()) if position[n] > index}
                    for kv, still_owed in ((member.kv, owed), (member.witness_kv if owed else None, False)):
                        if kv is not None:
                            after = tail(index + 1, count + 1, False, (pending - {member.name}) | needs, barred, still_owed)
                            options.append(seq(kv if first else f'"," ws {kv}', after))
                if not member.required and member.name not in pending:
                    triggers = {t for t, needs in dependencies.items() if member.name in needs}
                    options.append(tail(index + 1, count, first, pending, barred | triggers, owed))
                result = self.rule("members", alt(options))
            memo[key] = result
            return result

        empty_ok = low == 0 and not any(member.required for member in members) and not witnessed
        nonempty = tail(0, 0, True, frozenset(), frozenset(), witnessed)
        options = ['"{" ws "}"'] if empty_ok else []
        if nonempty is not None:
            options.append(f'"{{" ws {nonempty} ws "}}"')
        return self.rule("object", alt(options))

    @staticmethod
    def witness_members(extra: str | None, witness: str | None, first: bool) -> str | None:
        """The extra properties when one of them must be the witness (no property counts beside it)."""
        if witness is None:
            return None
        before = "" if extra is None else f'( {extra} "," ws )* ' if first else f'( "," ws {extra} )* '
        after = "" if extra is None else f' ( "," ws {extra} )*'
        return f"{before}{witness}{after}" if first else f'{before}"," ws {witness}{after}'

    @staticmethod
    def extra_members(extra: str | None, count: int, first: bool, counts: _Counts) -> str | None:
        """The extra properties after `count` declared ones, keeping the total within the counts."""
        need = max(1 if first else 0, counts.low - count)
        room = None if counts.high is None else counts.high - count
        if room is not None and room < need:
            return None
        if extra is None:
            return '""' if need == 0 else None
        if need > MAX_REPEAT or (room is not None and room > MAX_REPEAT):
            raise GrammarError("minProperties/maxProperties above the repetition limit")
        following = f'"," ws {extra}'
        if first:
            return f"{extra} {repeat(following, need - 1, None if room is None else room - 1)}"
        return repeat(following, need, room) if room != 0 else '""'
