"""StackKeys names a set of stacks by its sub-grammar alone: the same sub-grammar written in two grammars (other
rule names, other rule order, unrelated rules around it) gets one key, and any change in what it matches gets
another."""

from __future__ import annotations

from edge_runtime.grammar import compile_gbnf
from edge_runtime.grammar.stack_keys import StackKeys

WORD = 'root ::= "<" word ">"\nword ::= [a-z]+ digits?\ndigits ::= [0-9]+\nunused ::= "q"'
WORD_RENAMED = 'other ::= "z" | "zz"\nroot ::= "<" w ">"\nd ::= [0-9]+\nw ::= [a-z]+ d?'


def key_after(gbnf: str, text: bytes) -> bytes:
    grammar = compile_gbnf(gbnf)
    automaton = grammar.automaton
    state = automaton.walk(automaton.initial, text)
    assert automaton.stacks(state), f"{text!r} is not a prefix of the grammar"
    return StackKeys(automaton.machine).key(automaton.stacks(state))


def test_the_same_sub_grammar_gets_one_key_across_grammars() -> None:
    for text in (b"<", b"<ab", b"<ab1", b"<ab12"):
        assert key_after(WORD, text) == key_after(WORD_RENAMED, text)


def test_different_positions_get_different_keys() -> None:
    keys = {key_after(WORD, text) for text in (b"<", b"<a", b"<a1")}
    assert len(keys) == 3


def test_a_change_in_what_is_matched_changes_the_key() -> None:
    changed = [
        WORD.replace("[a-z]+", "[a-y]+"),
        WORD.replace('">"', '"]"'),
        WORD.replace("digits?", "digits*"),
        WORD.replace("[0-9]+", "[0-9]+ | <[7]>"),
    ]
    original = key_after(WORD, b"<ab")
    for gbnf in changed:
        assert key_after(gbnf, b"<ab") != original, gbnf


def test_token_elements_are_part_of_the_key() -> None:
    first = key_after('root ::= "a" <[5]> "b"', b"a")
    assert first == key_after('root ::= "a" <[5]> "b"', b"a")
    assert first != key_after('root ::= "a" <[6]> "b"', b"a")
