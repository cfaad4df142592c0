"""The compiled grammar: immutable and shared by every request (and thread) that uses it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

import numpy as np

from edge_runtime.grammar.automaton import DEAD, ByteAutomaton
from edge_runtime.grammar.collector import collector_paused
from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.gbnf import parse_gbnf, parse_gbnf_rules
from edge_runtime.grammar.gbnf_text import GrammarRules, rules_text
from edge_runtime.grammar.ir import ElementKind, FlatGrammar, compile_syntax
from edge_runtime.grammar.masks import TokenMasks
from edge_runtime.grammar.native_lowering import lower_rules
from edge_runtime.grammar.syntax import GrammarSyntax
from edge_runtime.grammar.vocab import Vocabulary

_TOKEN_KINDS = (int(ElementKind.TOKEN), int(ElementKind.TOKEN_NOT))


@dataclass(frozen=True, eq=False)
class Grammar:
    """Build with `compile_gbnf` (or `Grammar.from_syntax`), or through a `GrammarCompiler`, which caches.
    Compilers that relax a source (lenient JSON Schema) record what they could not enforce in `unenforced`,
    given to `compile_gbnf` or `from_syntax`: building a Grammar builds its automaton, so it is given once,
    not replaced afterwards."""

    source: GrammarSyntax | str
    """The parsed rules, or the GBNF text they came from: `compile_gbnf` keeps the text, since the parsed tree
    of a large grammar is tens of thousands of objects the cycle collector would scan for the grammar's life.
    `syntax` parses it again when asked."""
    flat: FlatGrammar
    unenforced: tuple[str, ...] = ()
    automaton: ByteAutomaton = field(init=False, repr=False, compare=False)
    max_token_id: int = field(init=False, repr=False, compare=False)
    """The largest token id a `<[id]>` or `!<[id]>` element names, -1 when none does."""
    required_tokens: frozenset[int] = field(init=False, repr=False, compare=False)
    """The token ids `<[id]>` elements name."""
    _masks: WeakKeyDictionary[Vocabulary, TokenMasks] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "automaton", ByteAutomaton(self.flat))
        object.__setattr__(self, "_masks", WeakKeyDictionary())
        named = self.flat.values[np.isin(self.flat.kinds, _TOKEN_KINDS)]
        object.__setattr__(self, "max_token_id", int(named.max()) if len(named) else -1)
        required = self.flat.values[self.flat.kinds == int(ElementKind.TOKEN)]
        object.__setattr__(self, "required_tokens", frozenset(required.tolist()))
        if self.automaton.initial == DEAD:
            raise GrammarError("the grammar matches nothing: every way through root meets an empty class")

    @property
    def syntax(self) -> GrammarSyntax:
        return parse_gbnf(self.source) if isinstance(self.source, str) else self.source

    @classmethod
    def from_syntax(cls, syntax: GrammarSyntax, unenforced: tuple[str, ...] = ()) -> Grammar:
        return cls(syntax, compile_syntax(syntax), unenforced)

    def matches(self, data: str | bytes) -> bool:
        """Whether the whole of `data` (str is taken as UTF-8; a lone surrogate never matches) is a sentence
        of the grammar."""
        raw = data.encode("utf-8", errors="surrogatepass") if isinstance(data, str) else bytes(data)
        state = self.automaton.walk(self.automaton.initial, raw)
        return state != DEAD and self.automaton.is_complete(state)

    def to_gbnf(self) -> str:
        """GBNF text that compiles to an equivalent grammar (the parsed rules, normalized)."""
        return self.syntax.to_gbnf()

    def check_tokens(self, vocab: Vocabulary) -> None:
        """Refuses (GrammarError, an HTTP 400) a grammar naming a token id `vocab` does not have, or asking
        for an end-of-generation token: decoding could reach a place where that token is the only way on,
        and end of generation is allowed only once the grammar is complete."""
        if self.max_token_id >= vocab.size:
            raise GrammarError(
                f"the grammar names token {self.max_token_id}, outside this model's vocabulary of "
                f"{vocab.size} tokens (ids 0..{vocab.size - 1})"
            )
        ending = sorted(self.required_tokens & vocab.eog_ids)
        if ending:
            raise GrammarError(
                f"the grammar asks for token {ending[0]}, which ends generation; generation ends by itself "
                "where the grammar is complete, so leave it out"
            )

    def token_masks(self, vocab: Vocabulary) -> TokenMasks:
        """The mask cache of this grammar over `vocab`, shared by all its matchers."""
        masks = self._masks.get(vocab)
        if masks is None:
            masks = self._masks.setdefault(vocab, TokenMasks(self.automaton, vocab))
        return masks


MAX_GRAMMAR_CHARS = 512 * 1024
"""GBNF text the parser reads compiles at about 1.5 ms per KiB, holding the GIL; text written a rule per line
and a compiler's rules are lowered in C at about 0.1 ms per KiB, without it, but the schema walk that writes
a compiler's rules costs what the parser did. So a bigger grammar (or a schema that compiles to one) would
stall every stream for seconds: it is refused instead."""


def compile_gbnf(text: str, *, unenforced: tuple[str, ...] = ()) -> Grammar:
    """Parse llama.cpp GBNF and compile it; raises GrammarError (an HTTP 400) with line:column. `unenforced`:
    what the source this text was written from asked for and the text leaves out (see `Grammar`). Text
    written a rule per line (tool-call grammars, most clients' grammars) is lowered in C."""
    return _compiled(text, lambda: _lowered_lines(text) or compile_syntax(parse_gbnf(text)), unenforced)


def _lowered_lines(text: str) -> FlatGrammar | None:
    """`lower_rules` of a text whose every non-blank line is `name ::= body`, or None. A body that is empty
    or ends in `|` goes on to the next line in GBNF, so such a text is left to the parser; any other rule that
    spans lines leaves a line the C side cannot read (an open group or string, a line without `::=`)."""
    rules: GrammarRules = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        name, separator, body = line.partition(" ::= ")
        stripped = body.strip()
        if not separator or not stripped or stripped.endswith("|"):
            return None
        rules.append((name, body))
    return lower_rules(rules)


def compile_rules(rules: GrammarRules, *, unenforced: tuple[str, ...] = ()) -> Grammar:
    """`compile_gbnf(rules_text(rules))` for a compiler that has its rules as (name, body) pairs: the same
    grammar, lowered in C (`lower_rules`); where that gives up, parsed rule by rule (`parse_gbnf_rules`),
    which says what is wrong. The text is still written, for the size limit and as the grammar's `source`."""
    return _compiled(
        rules_text(rules), lambda: lower_rules(rules) or compile_syntax(parse_gbnf_rules(rules)), unenforced
    )


def _compiled(text: str, lowered: Callable[[], FlatGrammar], unenforced: tuple[str, ...]) -> Grammar:
    if len(text) > MAX_GRAMMAR_CHARS:
        raise GrammarError(f"the grammar is {len(text):,} characters long; the limit is {MAX_GRAMMAR_CHARS:,}")
    try:
        with collector_paused():
            return Grammar(text, lowered(), unenforced)
    except RecursionError:
        raise GrammarError("the grammar is nested too deeply to compile") from None
