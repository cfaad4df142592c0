/* edge_runtime._native: the grammar engine's hot loops, portable C99 with no intrinsics. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "native.h"

static PyMethodDef native_methods[] = {
    {"apply_mask", edge_apply_mask, METH_VARARGS,
     "apply_mask(logits: float32 buffer, mask: bool buffer) -> None\n"
     "Set logits[i] = -inf wherever mask[i] is false, in place. Releases the GIL."},
    {"trie_walk", edge_trie_walk, METH_VARARGS,
     "trie_walk(table, node_byte, node_depth, subtree_end, token_start, sorted_ids, max_depth, entries,\n"
     "          out_mask, pending[, visit, node_states]) -> int\n"
     "Walk the preorder vocabulary trie from each (node, parent state) row of `entries` through the int32\n"
     "[n_states, 256] transition table, setting out_mask[token] (bool, one per token) for every token whose\n"
     "bytes stay alive (others are left as they are). Dead prefixes skip their subtree. Unknown transitions (-1)\n"
     "are written to `pending` as (node, parent state) rows with their subtrees unwalked; returns how many.\n"
     "`visit` (sorted int32 node ids holding every ancestor of each id) limits the walk to those nodes;\n"
     "`node_states` (int32, one per node) receives the state of every live node walked.\n"
     "Costs one table lookup per live trie node; releases the GIL."},
    {"pack_mask", edge_pack_mask, METH_VARARGS,
     "pack_mask(bools: bool buffer, out_bits: uint8 buffer) -> None\n"
     "Pack one bool per token into bits, little bit order (token i is bit i & 7 of byte i >> 3)."},
    {"unpack_mask", edge_unpack_mask, METH_VARARGS,
     "unpack_mask(bits: uint8 buffer, out_bools: bool buffer) -> None\n"
     "Unpack a little-bit-order bitmask into one bool per token (the inverse of pack_mask)."},
    {"lower_gbnf", edge_lower_gbnf, METH_VARARGS,
     "lower_gbnf(names: tuple[str, ...], bodies: tuple[str, ...], max_repetition: int, max_copies: int)\n"
     "    -> tuple | None\n"
     "The flat byte grammar (grammar/ir.py's layout) of the rules `name ::= body`, as (kinds uint8, values int32,\n"
     "rule_alts int32, alt_starts int32, byte classes 32 bytes each, the source rule of each helper rule int32,\n"
     "root index); None for GBNF outside what compilers write, a parse error, a {m,n} over max_repetition,\n"
     "repetition minimums writing out over max_copies items in all, or a failed check (the Python path then\n"
     "explains). Releases the GIL."},
    {"dfa_product", edge_dfa_product, METH_VARARGS,
     "dfa_product(transitions_a, accepting_a, transitions_b, accepting_b, max_states: int)\n"
     "    -> tuple[tuple[tuple[tuple[int, int, int], ...], ...], tuple[int, ...]] | None\n"
     "The strings both character automata accept (grammar/json_schema/char_dfa.py's rows of sorted, disjoint\n"
     "(low, high, target) transitions; state 0 starts), pruned to the states reachable from 0 that reach an\n"
     "accepting one and numbered breadth first: (transitions, accepting states). None when the product needs\n"
     "more than max_states states. Releases the GIL while it builds the product."},
    {"dfa_minimize", edge_dfa_minimize, METH_VARARGS,
     "dfa_minimize(transitions, accepting) -> (transitions, accepting)\n"
     "The equivalent character automaton with the fewest states (rows as dfa_product's), its states numbered\n"
     "breadth first from the start, adjacent ranges to one state merged; states unreachable from 0 dropped.\n"
     "Releases the GIL while it refines."},
    {"nfa_determinize", edge_nfa_determinize, METH_VARARGS,
     "nfa_determinize(edges: list[list[tuple[ranges, int]]], epsilon: list[list[int]], start: int, end: int,\n"
     "                max_states: int) -> (transitions, accepting) | None\n"
     "Subset construction: the character DFA of the NFA whose state s has the edges edges[s] ((low, high)\n"
     "ranges, target) and epsilon edges epsilon[s], a DFA state accepting when it holds `end`; pruned and\n"
     "numbered as dfa_product's. None when it needs more than max_states states (before pruning). Releases\n"
     "the GIL while it constructs."},
    {"schema_key", edge_schema_key, METH_VARARGS,
     "schema_key(schema: dict, schemas: dict, values: dict, interned: dict, alive: list, kinds: dict,\n"
     "           schema_marker, map_marker) -> object\n"
     "The memo key of a JSON Schema (grammar/json_schema/merged_keys.py): a token interned in `interned` for its\n"
     "content, equal for schemas equal but for annotations (`kinds` says which keywords hold schemas and which\n"
     "are annotations); tokens of schema dicts and plain JSON dicts and lists memoized by id in `schemas` and\n"
     "`values`, each node appended to `alive`. Holds the GIL (it reads Python objects throughout), letting it go\n"
     "for a moment every 1,024 nodes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "edge_runtime._native", NULL, -1, native_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModule_Create(&native_module);
}
