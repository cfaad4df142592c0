"""A JSON string that is none of some names (an extra property's key beside the declared ones, a string a
`not` enum excludes), as rules over the trie of the names: a node per prefix, each left by any other character."""

from __future__ import annotations

import json
import re
from functools import lru_cache

from edge_runtime.grammar.gbnf_text import gbnf_literal
from edge_runtime.grammar.json_schema.char_sets import MAX_CODE_POINT, complement, json_char_set
from edge_runtime.grammar.json_schema.core import CompilerCore, alt

_JSON_ESCAPED = re.compile(r'[\x00-\x1f"\\]')
"""The characters json.dumps escapes (ensure_ascii off); most key characters are none of them."""


def _key_unit(char: str) -> str:
    """`char` as it is written in a canonical JSON key."""
    return json.dumps(char, ensure_ascii=False)[1:-1] if _JSON_ESCAPED.match(char) else char


_KEY_ESCAPES = [json.dumps(chr(code))[1:-1] for code in range(0x20)] + ['\\"', "\\\\"]


@lru_cache(maxsize=4096)
def _key_deviation(children: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The GBNF of a key that leaves a trie node by none of its `children` (a JSON string unit each): any
    other character or escape, then the key's tail; and the base rules it names. Cached: it depends on the
    set of next characters alone, and every schema's names repeat a few dozen such sets."""
    raw_children = [unit for unit in children if not unit.startswith("\\")]
    escape_children = {unit for unit in children if unit.startswith("\\")}
    excluded = [(ord(c), ord(c)) for c in raw_children] + [(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]
    needed = ["key-tail"]
    if all(ord(c) < 0x80 for c in raw_children):
        # Past ASCII every node deviates alike: one shared rule instead of a Unicode class per node.
        ascii_class = json_char_set(complement((*excluded, (0x80, MAX_CODE_POINT))))
        raw_class = alt([ascii_class, "key-wide"])
        needed.append("key-wide")
    else:
        raw_class = json_char_set(complement(tuple(excluded)))
    deviations = [f"{raw_class} key-tail"] if raw_class else []
    if escape_children:
        deviations += [f"{gbnf_literal(e)} key-tail" for e in _KEY_ESCAPES if e not in escape_children]
    else:
        deviations.append("key-escape key-tail")
        needed.append("key-escape")
    return " | ".join(deviations), tuple(needed)


class KeyTrieRules(CompilerCore):
    """`key_not_in` and the trie nodes it writes, memoized per compile (CompilerCore's key memos)."""

    def key_not_in(self, names: list[str]) -> str:
        """A JSON key (canonical form, quotes included) that is none of `names`. Memoized per compile: the
        same declared names come back with every merge of an object (1,500 tries for 30 name lists in
        Github_hard o69586), and each trie walk writes a rule body per character."""
        key = tuple(names)
        found = self.keys_not_in.get(key)
        if found is None:
            found = self.keys_not_in[key] = f'"\\"" {self.key_node(key)}'
        return found

    def key_node(self, suffixes: tuple[str, ...]) -> str:
        """The rule of a node of the trie of the declared names: the key so far is a prefix of the names whose
        rests are `suffixes` (in the names' order; "" where a name ends here). Memoized per compile by them:
        a node is what its suffixes say, and tries of different objects share most of their branches
        (Kubernetes kb_1007: 4,107 nodes, 1,823 distinct)."""
        found = self.key_nodes.get(suffixes)
        if found is not None:
            return found
        if len(suffixes) == 1 and suffixes[0]:
            return self.key_chain(suffixes[0])
        following: dict[str, list[str]] = {}
        for suffix in suffixes:
            if suffix:
                following.setdefault(suffix[0], []).append(suffix[1:])
        options = ['"\\""'] if "" not in suffixes else []
        next_units = tuple(_key_unit(char) for char in following)
        other = self.key_other(next_units)
        if other:
            options.append(other)
        for unit, rests in zip(next_units, following.values()):
            options.append(f"{gbnf_literal(unit)} {self.key_node(tuple(rests))}")
        found = self.key_nodes[suffixes] = self.rule("key", " | ".join(options))
        return found

    def key_chain(self, rest: str) -> str:
        """`key_node((rest,))`: below the last branch of the trie each node has one name's rest, and most
        nodes are such; walked in a loop, writing the rules `key_node` would, in its order."""
        chain: list[tuple[str, str]] = []
        found: str | None = None
        key_nodes, steps = self.key_nodes, self.chain_steps
        while rest and (found := key_nodes.get((rest,))) is None:
            step = steps.get(rest[0])
            if step is None:
                unit = _key_unit(rest[0])
                other = self.key_other((unit,))
                step = steps[rest[0]] = " | ".join(part for part in ('"\\""', other, gbnf_literal(unit)) if part) + " "
            chain.append((rest, step))
            rest = rest[1:]
        if found is None:
            found = self.key_node(("",))
        for suffix, step in reversed(chain):
            found = key_nodes[(suffix,)] = self.rule("key", step + found)
        return found

    def key_other(self, next_units: tuple[str, ...]) -> str:
        """The rule of a key that leaves a trie node by none of `next_units` ("" when every character is one
        of them). One rule per set of next characters, shared by every node with that set: the deviation is
        most of a node's text, and a schema's trie repeats a few dozen sets over hundreds of nodes."""
        other = self.key_others.get(next_units)
        if other is None:
            deviation, needed = _key_deviation(next_units)
            for base in needed:
                self.use(base)
            other = self.key_others[next_units] = self.rule("key-other", deviation) if deviation else ""
        return other
