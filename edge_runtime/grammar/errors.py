"""The one error type of the grammar package: a grammar or schema that cannot be compiled (HTTP 400)."""

from __future__ import annotations

from edge_runtime.errors import BadRequest


class GrammarError(BadRequest):
    """Raised by the GBNF parser and the grammar compiler; `line` and `column` are 1-based positions in the
    grammar text (0 when the problem has no single place, e.g. a missing root rule)."""

    def __init__(self, reason: str, line: int = 0, column: int = 0) -> None:
        where = f"grammar error at {line}:{column}: " if line else "grammar error: "
        super().__init__(where + reason)
        self.reason = reason
        self.line = line
        self.column = column
