"""The native hot loops against their numpy references: trie-walk masks on random grammar walks (tiny, synthetic
and Gemma vocabularies), the preorder trie layout, bitmask packing, and the C functions' input errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from grammar_cases import GBNF_DIR, load_llamacpp
from grammar_support import SYNTHETIC_CONTROL_BASE, new_mask
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime import _native
from edge_runtime.grammar import Grammar, GrammarMatcher, Vocabulary, compile_gbnf, compile_json_schema
from edge_runtime.grammar.masks import TokenMasks, preorder_trie, shared_tops_walks

JSON_GBNF = (GBNF_DIR / "json.gbnf").read_text(encoding="utf-8")
WALK_GBNF = {
    "json": JSON_GBNF,
    "arithmetic": (GBNF_DIR / "arithmetic.gbnf").read_text(encoding="utf-8"),
    "utf8": 'root ::= "«" [^"\\\\é]{0,6} ("é" | [α-ω]+) "»"',
    "keys": 'root ::= "{\\"name\\": \\"" [a-z]{1,8} "\\", \\"ok\\": " ("true" | "false") "}"',
}
EXTRACTION_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
        "active": {"type": "boolean"},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def assert_native_matches_numpy(grammar: Grammar, vocab: Vocabulary, choices: list[int]) -> None:
    """Walk the grammar by masked tokens picked by `choices`; at every state the C walk (whole, and split by
    stack tops wherever possible) and the numpy level pass give the same mask. The native side computes first,
    so it meets the unknown transitions."""
    split = TokenMasks(grammar.automaton, vocab, adaptive_share=1.0, wide_bytes=0)
    native = TokenMasks(grammar.automaton, vocab)
    numpy = TokenMasks(grammar.automaton, vocab, native=False)
    matcher = GrammarMatcher(grammar, vocab)
    by_split, by_native, by_numpy = new_mask(vocab), new_mask(vocab), new_mask(vocab)
    for choice in choices:
        split.compute(matcher.state, by_split)
        native.compute(matcher.state, by_native)
        numpy.compute(matcher.state, by_numpy)
        np.testing.assert_array_equal(by_split, by_numpy)
        np.testing.assert_array_equal(by_native, by_numpy)
        allowed = np.flatnonzero(by_native)
        if len(allowed) == 0 or matcher.is_finished():
            break
        assert matcher.accept_token(int(allowed[choice % len(allowed)]))


@pytest.mark.parametrize("name", sorted(WALK_GBNF))
@settings(max_examples=10, deadline=None)
@given(choices=st.lists(st.integers(min_value=0, max_value=100_000), min_size=1, max_size=20))
def test_native_masks_on_tiny_vocabulary(name: str, choices: list[int], tiny_vocabulary: Vocabulary) -> None:
    assert_native_matches_numpy(compile_gbnf(WALK_GBNF[name]), tiny_vocabulary, choices)


@settings(max_examples=15, deadline=None)
@given(choices=st.lists(st.integers(min_value=0, max_value=100_000), min_size=1, max_size=20))
def test_native_masks_on_synthetic_vocabulary(choices: list[int], synthetic_vocabulary: Vocabulary) -> None:
    start, end = SYNTHETIC_CONTROL_BASE + 10, SYNTHETIC_CONTROL_BASE + 11
    grammar = compile_gbnf(f'root ::= <[{start}]>? ("a" | "é" | !<[{end}]>)* <[{end}]> "x"? ws\nws ::= [ \\n]*')
    assert_native_matches_numpy(grammar, synthetic_vocabulary, choices)
    assert_native_matches_numpy(compile_gbnf(JSON_GBNF), synthetic_vocabulary, choices)


def test_native_masks_on_schema_cases(tiny_vocabulary: Vocabulary) -> None:
    compiled = 0
    for case in load_llamacpp("json_schema_to_grammar.json")["cases"][::7]:
        if case["expected_status"] != "SUCCESS":
            continue
        try:
            grammar = compile_json_schema(case["schema"])
        except ValueError:
            continue
        assert_native_matches_numpy(grammar, tiny_vocabulary, [3, 17, 1, 250, 9, 40, 2, 77])
        compiled += 1
    assert compiled >= 5


def test_preorder_subtrees_hold_exactly_the_tokens_under_their_prefix(synthetic_vocabulary: Vocabulary) -> None:
    vocab = synthetic_vocabulary
    trie = preorder_trie(vocab)
    prefix_of = [b""]
    for node in range(1, trie.n_nodes):
        depth = int(trie.node_depth[node])
        assert 1 <= depth <= len(prefix_of[-1]) + 1
        parent_prefix = next(p for p in reversed(prefix_of) if len(p) == depth - 1)
        prefix_of.append(parent_prefix + bytes([int(trie.node_byte[node])]))
    assert len(set(prefix_of)) == trie.n_nodes
    assert prefix_of == sorted(prefix_of)
    text_ids = set(vocab.text_token_ids())
    for node in range(trie.n_nodes):
        low, high = int(trie.token_start[node]), int(trie.token_start[int(trie.subtree_end[node])])
        under = {int(token) for token in trie.sorted_ids[low:high]}
        expected = {t for t in text_ids if vocab.token_bytes[t].startswith(prefix_of[node])}
        assert under == expected
        spelled = trie.sorted_ids[trie.token_start[node] : trie.token_start[node + 1]].tolist()
        assert {vocab.token_bytes[t] for t in spelled} <= {prefix_of[node]}


@given(bools=st.lists(st.booleans(), min_size=0, max_size=300))
def test_pack_and_unpack_agree_with_numpy(bools: list[bool]) -> None:
    mask = np.array(bools, dtype=bool)
    packed = np.zeros((len(bools) + 7) // 8, dtype=np.uint8)
    _native.pack_mask(mask, packed)
    np.testing.assert_array_equal(packed, np.packbits(mask, bitorder="little"))
    unpacked = np.ones(len(bools), dtype=bool)
    _native.unpack_mask(packed, unpacked)
    np.testing.assert_array_equal(unpacked, mask)


def test_pack_refuses_a_bitmask_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="packs into 2 bytes"):
        _native.pack_mask(np.zeros(9, dtype=bool), np.zeros(1, dtype=np.uint8))
    with pytest.raises(ValueError, match="packs into 2 bytes"):
        _native.unpack_mask(np.zeros(3, dtype=np.uint8), np.zeros(9, dtype=bool))


def test_trie_walk_reports_bad_inputs(synthetic_vocabulary: Vocabulary) -> None:
    grammar = compile_gbnf('root ::= "ab" [a-z]*')
    trie = preorder_trie(synthetic_vocabulary)
    out = new_mask(synthetic_vocabulary)
    pending = np.empty((trie.n_nodes, 2), dtype=np.int32)
    arrays = (trie.node_byte, trie.node_depth, trie.subtree_end, trie.token_start, trie.sorted_ids)

    def walk(table: np.ndarray, entries: np.ndarray, out: np.ndarray, rows: np.ndarray) -> int:
        return int(_native.trie_walk(table, *arrays, trie.max_depth, entries, out, rows))

    start = np.array([[0, grammar.automaton.initial]], dtype=np.int32)
    assert walk(grammar.automaton.table, start, out, pending) > 0
    with pytest.raises(OverflowError, match="one row per trie node"):
        walk(grammar.automaton.table, start, out, pending[:0])
    mask = new_mask(synthetic_vocabulary)
    TokenMasks(grammar.automaton, synthetic_vocabulary).compute(grammar.automaton.initial, mask)
    table = grammar.automaton.table
    out[:] = False
    assert walk(table, start, out, pending) == 0
    mask[synthetic_vocabulary.eog_array] = False
    np.testing.assert_array_equal(out, mask)
    with pytest.raises(ValueError, match="outside the transition table"):
        walk(table, np.array([[0, table.shape[0]]], dtype=np.int32), out, pending)
    with pytest.raises(ValueError, match="256 int32 columns"):
        walk(table.ravel()[:1000].copy(), start, out, pending)
    with pytest.raises(TypeError, match="4-byte items"):
        walk(table.astype(np.int64), start, out, pending)
    with pytest.raises(ValueError, match="outside the output mask"):
        walk(table, start, out[:8], pending)


@pytest.fixture(scope="module")
def gemma_vocabulary(gemma_model_path: Path) -> Vocabulary:
    from edge_runtime.engine.llama_handles import LlamaModel
    from edge_runtime.engine.tokenizer import Tokenizer

    model = LlamaModel(gemma_model_path)
    try:
        return Tokenizer(model).vocabulary(gemma_model_path.parent)
    finally:
        model.close()


@pytest.mark.gemma
@pytest.mark.parametrize(
    "schema",
    [
        EXTRACTION_SCHEMA,
        {"type": "array", "items": {"type": "number"}, "maxItems": 3},
        {"enum": ["red", 1, None]},
        {"type": "string"},
        {},
    ],
    ids=["extraction", "numbers", "enum", "string", "any"],
)
def test_native_masks_on_gemma_vocabulary(schema: dict[str, object], gemma_vocabulary: Vocabulary) -> None:
    assert_native_matches_numpy(compile_json_schema(schema), gemma_vocabulary, [5, 99_999, 7, 12_345, 3, 0, 1])


@pytest.mark.gemma
def test_string_states_on_gemma_are_split_by_their_stack_tops(gemma_vocabulary: Vocabulary) -> None:
    """Inside a JSON string most tokens are allowed; the default masks take the split path there (so
    the equality tests above cover it on a real vocabulary), and two string properties share one tops walk."""
    grammar = compile_json_schema(EXTRACTION_SCHEMA)
    masks = TokenMasks(grammar.automaton, gemma_vocabulary)
    numpy = TokenMasks(grammar.automaton, gemma_vocabulary, native=False)
    splits = []
    for prefix in (b'{"name": "Ann', b'{"name": "Ann", "age": 3, "email": "a', b'{"name": "x", "age": 1, "tags": ["'):
        matcher = GrammarMatcher(grammar, gemma_vocabulary)
        assert matcher.accept_bytes(prefix)
        by_native, by_numpy = new_mask(gemma_vocabulary), new_mask(gemma_vocabulary)
        masks.compute(matcher.state, by_native)
        numpy.compute(matcher.state, by_numpy)
        np.testing.assert_array_equal(by_native, by_numpy)
        assert by_native.sum() > 0.2 * gemma_vocabulary.size
        splits.append(masks._split(matcher.state))
    assert all(split is not None for split in splits)
    string = {"type": "string"}
    two_strings = compile_json_schema({"type": "object", "properties": {"a": string, "b": string}})
    masks = TokenMasks(two_strings.automaton, gemma_vocabulary)
    first, second = GrammarMatcher(two_strings, gemma_vocabulary), GrammarMatcher(two_strings, gemma_vocabulary)
    assert first.accept_bytes(b'{"a": "x') and second.accept_bytes(b'{"a": "x", "b": "y')
    assert first.state != second.state
    first_split, second_split = masks._split(first.state), masks._split(second.state)
    assert first_split is not None and second_split is not None
    assert first_split.tops is second_split.tops


@pytest.mark.gemma
def test_string_bodies_of_different_grammars_share_one_tops_walk(gemma_vocabulary: Vocabulary) -> None:
    """A top-level string (its closing quote a stack of its own below the body), a string in an array and a
    string property: three grammars, one walk of the string body, and each mask still the numpy pass's."""
    cases = [
        ({"type": "string"}, b'"ab'),
        ({"type": "array", "items": {"type": "string"}}, b'["x", "ab'),
        ({"type": "object", "properties": {"k": {"type": "string"}}}, b'{"k": "ab'),
    ]
    tops = []
    for schema, prefix in cases:
        grammar = compile_json_schema(schema)
        masks = TokenMasks(grammar.automaton, gemma_vocabulary)
        matcher = GrammarMatcher(grammar, gemma_vocabulary)
        assert matcher.accept_bytes(prefix)
        split = masks._split(matcher.state)
        assert split is not None, schema
        tops.append(split.tops)
        by_native, by_numpy = new_mask(gemma_vocabulary), new_mask(gemma_vocabulary)
        masks.compute(matcher.state, by_native)
        TokenMasks(grammar.automaton, gemma_vocabulary, native=False).compute(matcher.state, by_numpy)
        np.testing.assert_array_equal(by_native, by_numpy)
    assert tops[0] is tops[1] is tops[2]


@pytest.mark.gemma
def test_grammars_sharing_tops_walks_from_several_threads_give_the_reference_masks(
    gemma_vocabulary: Vocabulary,
) -> None:
    """Four schemas with string values, each walked from its own thread at once: the shared tops walks and
    the per-thread walk buffers give every state the numpy pass's mask."""
    schemas = [
        {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}},
        {"type": "array", "items": {"type": "string"}},
        {"type": "object", "properties": {"z": {"type": "array", "items": {"type": "string"}}}},
        {"type": "string"},
    ]
    prefixes = [b'{"a": "hello wor', b'["x", "y', b'{"z": ["p", "q', b'"abc']
    grammars = [compile_json_schema(schema) for schema in schemas]
    shared_tops_walks(gemma_vocabulary).clear()

    def masks_along(index: int) -> list[np.ndarray]:
        grammar, prefix = grammars[index], prefixes[index]
        masks = TokenMasks(grammar.automaton, gemma_vocabulary)
        found = []
        for end in range(1, len(prefix) + 1):
            matcher = GrammarMatcher(grammar, gemma_vocabulary)
            assert matcher.accept_bytes(prefix[:end])
            mask = new_mask(gemma_vocabulary)
            masks.compute(matcher.state, mask)
            found.append(mask)
        return found

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(masks_along, range(len(schemas))))
    for index, found in enumerate(results):
        grammar, prefix = grammars[index], prefixes[index]
        reference = TokenMasks(grammar.automaton, gemma_vocabulary, native=False)
        for end, mask in zip(range(1, len(prefix) + 1), found):
            matcher = GrammarMatcher(grammar, gemma_vocabulary)
            assert matcher.accept_bytes(prefix[:end])
            expected = new_mask(gemma_vocabulary)
            reference.compute(matcher.state, expected)
            np.testing.assert_array_equal(mask, expected, err_msg=f"{schemas[index]} after {prefix[:end]!r}")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (((((0, 5, 7),),), frozenset({0}), ((),), frozenset(), 10), "target is not a state"),
        (([], frozenset(), ((),), frozenset(), 10), "must be a tuple"),
        (((((0, 5, 0),),), frozenset({3}), (((0, 5, 0),),), frozenset({0}), 10), "accepting state is not a state"),
        (((((0, 5, 0),),), frozenset({0}), (((0, 5, 0),),), frozenset({0}), 0), "max_states must be positive"),
        (((((0, 5),),), frozenset({0}), (((0, 5, 0),),), frozenset({0}), 10), "must be \\(low, high, target\\)"),
    ],
)
def test_dfa_product_reports_bad_inputs(args: tuple[object, ...], error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):
        _native.dfa_product(*args)
