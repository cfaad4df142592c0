"""Compiler-written GBNF rules lowered in C (native/gbnf_lower.c): the FlatGrammar that
`compile_syntax(parse_gbnf_rules(rules))` builds, element for element, with the same checks, without a syntax
tree and without the GIL. Parsing and lowering in Python were most of a large schema's compile."""

from __future__ import annotations

import numpy as np

from edge_runtime import _native
from edge_runtime.grammar.gbnf import MAX_REPETITION
from edge_runtime.grammar.gbnf_text import GrammarRules
from edge_runtime.grammar.ir import MAX_REPEATED_COPIES, FlatGrammar, byte_class_rows


def lower_rules(rules: GrammarRules) -> FlatGrammar | None:
    """The flat grammar of `rules` (root among them), or None where the C side gives up: GBNF beyond what
    compilers write (comments, line breaks, token references), a parse error, an undefined or repeated rule,
    or a failed check. The Python path then says what is wrong."""
    names, bodies = map(tuple, zip(*rules, strict=True)) if rules else ((), ())
    lowered = _native.lower_gbnf(names, bodies, MAX_REPETITION, MAX_REPEATED_COPIES)
    if lowered is None:
        return None
    kinds, values, rule_alts, alt_starts, classes, parents, root = lowered
    helper_names = (
        f"{names[parent]}~{rule_id}"
        for rule_id, parent in enumerate(np.frombuffer(parents, dtype=np.int32).tolist(), start=len(names))
    )
    return FlatGrammar(
        kinds=np.frombuffer(kinds, dtype=np.uint8).copy(),
        values=np.frombuffer(values, dtype=np.int32).copy(),
        rule_alts=np.frombuffer(rule_alts, dtype=np.int32).copy(),
        alt_starts=np.frombuffer(alt_starts, dtype=np.int32).copy(),
        byte_classes=byte_class_rows(classes),
        root=root,
        rule_names=(*names, *helper_names),
    )
