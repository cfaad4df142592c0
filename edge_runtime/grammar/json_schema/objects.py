"""Objects: properties in schema order, required and dependentRequired, extra keys and property counts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.gbnf_text import gbnf_literal
from edge_runtime.grammar.json_schema.char_dfa import CharDfa, dfa_to_gbnf, intersection
from edge_runtime.grammar.json_schema.core import MAX_REPEAT, alt, repeat, seq
from edge_runtime.grammar.json_schema.key_classes import (
    PatternProperty,
    Witness,
    key_classes,
    pattern_properties,
    property_names_dfa,
    witness_of,
)
from edge_runtime.grammar.json_schema.key_trie import KeyTrieRules
from edge_runtime.grammar.json_schema.keywords import SOME_PROPERTY

MAX_DEPENDENCIES = 8
"""dependentRequired triggers per object (each one multiplies the object's rules in the worst case)."""
MAX_WITNESS_ROOM = 64
"""Most properties counted one by one after the declared ones while witnesses are owed (maxProperties)."""
MAX_WITNESSES = 4
"""Most properties an object is made to have by negations (each set of them is a rule: 2^n - 1)."""
MAX_COUNTING_STATES = 4096
"""Bound on (declared properties x property counts) rules for minProperties/maxProperties."""


@dataclass(frozen=True)
class _Member:
    """A declared property: its `"name": value` rule (None when no value is allowed) and whether required."""

    name: str
    kv: str | None
    required: bool
    witness_kvs: tuple[tuple[frozenset[int], str], ...] = ()
    """With witnesses (SOME_PROPERTY): this property written as each set of them it can be at once."""


@dataclass(frozen=True)
class _Counts:
    """minProperties / maxProperties (None: no maximum)."""

    low: int
    high: int | None


@dataclass(frozen=True)
class _Witnessing:
    """The witnesses an object owes (by index) and the extra property rule for each set of them one extra can
    be at once."""

    owed: frozenset[int]
    extras: dict[frozenset[int], str]


@dataclass
class _MemberWalk:
    """What `members_from` reads as it walks an object's members (methods, not closures that call themselves:
    those are reference cycles, and a compile's objects would wait for a collection that holds the GIL
    instead of being freed as it returns)."""

    members: list[_Member]
    extra: str | None
    counts: _Counts
    dependencies: dict[str, tuple[str, ...]]
    witnessing: _Witnessing
    position: dict[str, int] = field(init=False)
    cap: int = field(init=False)
    memo: dict[tuple[int, int, bool, frozenset[str], frozenset[str], frozenset[int]], str | None] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.position = {member.name: index for index, member in enumerate(self.members)}
        self.cap = self.counts.high if self.counts.high is not None else self.counts.low


class ObjectRules(KeyTrieRules):
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
        witnesses = self.witnesses(schema, pointer, dependencies)
        allowed = None
        if names_schema not in (True, {}) and (declared or patterns or witnesses):
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
            kv = None if value is None else self.rule("kv", f"{key} {self.colon} {value}")
            witness_kvs = []
            for chosen, witness in witnesses.items():
                if witness.keys.matches(name):
                    found = self.expr({"allOf": [sub, *matching, witness.value]}, where)
                    if found is not None:
                        witness_kvs.append((chosen, self.rule("kv", f"{key} {self.colon} {found}")))
            members.append(_Member(name, kv, name in required, tuple(witness_kvs)))
        self.use_spacing()
        extra_value = (
            None if extra_schema is False else self.expr(extra_schema, f"{pointer}/additionalProperties")
        )
        extra = None
        witness_extras = {}
        for chosen, witness in witnesses.items():
            found = self.classed_extras(patterns, list(declared), allowed, extra_value, witness, extra_schema, pointer)
            if found is not None:
                witness_extras[chosen] = found
        if patterns or allowed is not None:
            extra = self.classed_extras(patterns, list(declared), allowed, extra_value)
        elif extra_value is not None:  # without extras, no key trie: its rules would be written unreached
            extra_key = self.extra_key(list(declared), names_schema, pointer)
            if extra_key is not None:
                extra = self.rule("kv", f"{extra_key} {self.colon} {extra_value}")
        counted = high if high is not None else low
        if counted and len(members) * (counted + 2) > MAX_COUNTING_STATES:
            self.unenforceable(
                "maxProperties" if high is not None else "minProperties",
                pointer,
                f"counting to {counted} over {len(members)} properties takes too many rules",
            )
            low, high = 0, None
        owed = frozenset().union(*witnesses) if witnesses else frozenset()
        return self.object_rule(members, extra, _Counts(low, high), dependencies, _Witnessing(owed, witness_extras))

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
                options.append(self.rule("kv", f'"\\"" {content} "\\"" {self.colon} {value}'))
        return self.rule("kv", alt(options))

    def witnesses(self, schema: dict[str, Any], pointer: str, dependencies: dict[str, Any]) -> dict[frozenset[int], Witness]:
        """The properties this object must have (SOME_PROPERTY, what negations of additionalProperties,
        patternProperties and propertyNames write), by each set of them one property can be at once (keys in
        all their automata, the value meeting all their schemas); refused beside property counts or
        dependentRequired (which they would multiply), or past MAX_WITNESSES."""
        specs = schema.get(SOME_PROPERTY)
        if not specs:
            return {}
        found = [witness_of(spec) for spec in specs] if isinstance(specs, list) else [None]
        if any(w is None for w in found) or dependencies or len(found) > MAX_WITNESSES:
            self.unenforceable("not", pointer, "properties some keys must have, beside these keywords")
            return {}
        single = [w for w in found if w is not None]
        together: dict[frozenset[int], Witness] = {}
        for size in range(1, len(single) + 1):
            for chosen in combinations(range(len(single)), size):
                keys = single[chosen[0]].keys
                for index in chosen[1:]:
                    keys = intersection(keys, single[index].keys)
                values = [single[index].value for index in chosen]
                together[frozenset(chosen)] = Witness(keys, {"allOf": values} if size > 1 else values[0])
        return together

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

    def object_rule(
        self,
        members: list[_Member],
        extra: str | None,
        counts: _Counts,
        dependencies: dict[str, tuple[str, ...]],
        witnessing: _Witnessing | None = None,
    ) -> str | None:
        """Members in order, each present or (unless required) skipped, then the extra properties, with
        the property count in bounds and every present dependentRequired trigger's names present. With
        witnesses, each one written by some property (a member's `witness_kvs`, or an extra)."""
        witnessing = witnessing or _Witnessing(frozenset(), {})
        low, high = counts.low, counts.high
        empty_ok = low == 0 and not any(member.required for member in members) and not witnessing.owed
        if low == 0 and high is None and not dependencies and not witnessing.owed:
            nonempty = self.plain_members(members, extra, counts)
        else:
            walk = _MemberWalk(members, extra, counts, dependencies, witnessing)
            nonempty = self.members_from(walk, 0, 0, True, frozenset(), frozenset(), witnessing.owed)
        options = [self.enclosed("{}")] if empty_ok else []
        if nonempty is not None:
            options.append(self.enclosed("{}", nonempty))
        return self.rule("object", alt(options))

    def plain_members(self, members: list[_Member], extra: str | None, counts: _Counts) -> str | None:
        """`members_from` from the start where nothing is counted, needed or owed (most objects): the same
        rules in the same order, with a memo keyed by where and whether a member came yet."""
        return self.plain_members_from(members, extra, counts, {}, 0, True)

    def plain_members_from(
        self,
        members: list[_Member],
        extra: str | None,
        counts: _Counts,
        memo: dict[tuple[int, bool], str | None],
        index: int,
        first: bool,
    ) -> str | None:
        key = (index, first)
        if key in memo:
            return memo[key]
        if index == len(members):
            result = self.extra_members(extra, 0 if first else 1, first, counts)
        else:
            member = members[index]
            options: list[str | None] = []
            if member.kv is not None:
                after = self.plain_members_from(members, extra, counts, memo, index + 1, False)
                options.append(seq(member.kv if first else f"{self.comma} {member.kv}", after))
            if not member.required:
                options.append(self.plain_members_from(members, extra, counts, memo, index + 1, first))
            result = self.rule("members", alt(options))
        memo[key] = result
        return result

    def members_from(
        self,
        walk: _MemberWalk,
        index: int,
        count: int,
        first: bool,
        pending: frozenset[str],
        barred: frozenset[str],
        owed: frozenset[int],
    ) -> str | None:
        """Members from `index` on, `count` written so far; `first`: none yet and one is needed; `pending`:
        names that must still come; `barred`: names that must not (a need was skipped); `owed`: the
        witnesses still to come."""
        low, high = walk.counts.low, walk.counts.high
        if high is not None and count > high:
            return None
        key = (index, min(count, walk.cap + 1), first, pending, barred, owed)
        if key in walk.memo:
            return walk.memo[key]
        members = walk.members
        if index == len(members):
            if pending:
                result = None
            elif owed:
                bounds = (max(0, low - count), None if high is None else high - count)
                result = self.witness_members(walk.extra, walk.witnessing.extras, owed, first, bounds)
            else:
                result = self.extra_members(walk.extra, count, first, walk.counts)
        else:
            member = members[index]
            options: list[str | None] = []
            if member.name not in barred:
                needs = {n for n in walk.dependencies.get(member.name, ()) if walk.position[n] > index}
                ways = [(member.kv, owed)] + [(kv, owed - chosen) for chosen, kv in member.witness_kvs if chosen <= owed]
                for kv, still_owed in ways:
                    if kv is not None:
                        still_pending = (pending - {member.name}) | needs
                        after = self.members_from(walk, index + 1, count + 1, False, still_pending, barred, still_owed)
                        options.append(seq(kv if first else f"{self.comma} {kv}", after))
            if not member.required and member.name not in pending:
                triggers = {t for t, needs in walk.dependencies.items() if member.name in needs}
                options.append(self.members_from(walk, index + 1, count, first, pending, barred | triggers, owed))
            result = self.rule("members", alt(options))
        walk.memo[key] = result
        return result

    def witness_members(
        self,
        extra: str | None,
        witnesses: dict[frozenset[int], str],
        owed: frozenset[int],
        first: bool,
        bounds: tuple[int, int | None],
    ) -> str | None:
        """The extra properties when the `owed` witnesses must come among them: extras, one written as some
        of the owed witnesses, then the rest; `bounds`: how many more properties are needed and allowed
        (None: any number), counted one by one (up to MAX_WITNESS_ROOM) when either matters."""
        need, room = bounds
        if room is not None and room <= 0:
            return None
        if room is not None and room > MAX_WITNESS_ROOM:
            raise GrammarError(f"an object owing properties counts up to {MAX_WITNESS_ROOM} more at most")
        lead = "" if first else f"{self.comma} "
        loose = room is None and need <= 1  # any number of extras around: stars, not a rule per count
        after = (max(need - 1, 0), None if room is None else room - 1)
        before = ""
        if loose and extra is not None:
            before = f"( {extra} {self.comma} )* " if first else f"( {self.comma} {extra} )* "
        options = []
        for chosen, witness in witnesses.items():
            if not chosen <= owed:
                continue
            left = owed - chosen
            if left:
                rest = self.witness_members(extra, witnesses, left, False, after)
            elif loose:
                rest = '""' if extra is None else f"( {self.comma} {extra} )*"
            else:
                rest = self.extras_between(extra, after[0], after[1], first=False)
            if rest is not None:
                options.append(seq(f"{before}{lead}{witness}", rest))
        if extra is not None and not loose:
            options.append(seq(f"{lead}{extra}", self.witness_members(extra, witnesses, owed, False, after)))
        return self.rule("witnessed", alt(options))

    def extras_between(self, extra: str | None, need: int, room: int | None, first: bool) -> str | None:
        """`need` to `room` extra properties (None: no maximum)."""
        if room is not None and room < need:
            return None
        if extra is None:
            return '""' if need == 0 else None
        if need > MAX_REPEAT or (room is not None and room > MAX_REPEAT):
            raise GrammarError("minProperties/maxProperties above the repetition limit")
        following = f"{self.comma} {extra}"
        if first:
            return f"{extra} {repeat(following, need - 1, None if room is None else room - 1)}"
        return repeat(following, need, room) if room != 0 else '""'

    def extra_members(self, extra: str | None, count: int, first: bool, counts: _Counts) -> str | None:
        """The extra properties after `count` declared ones, keeping the total within the counts."""
        need = max(1 if first else 0, counts.low - count)
        return self.extras_between(extra, need, None if counts.high is None else counts.high - count, first)
