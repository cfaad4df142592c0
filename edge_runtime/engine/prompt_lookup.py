"""Draft tokens from the text so far (prompt lookup): when the last few tokens occurred before, what followed them
then is guessed to follow now. Extraction answers copy names, addresses and numbers out of their document and
repeat their own layout from field to field, so one forward pass can check several such tokens at once; the
scheduler keeps the ones the model would have chosen itself and forgets the rest (choice_steps.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_DRAFT_TOKENS = 16
"""The longest draft a server may be configured for: each draft token asks a decode for one more row of
logits (a vocabulary's worth of floats; 1 MiB on Gemma 3), and a cut past the sliding window's spare cells
could not be made (llama_handles.LlamaContext.remove)."""

NGRAM_SIZES = (3, 2)
"""Longest match first: a draft after a single common token is mostly wrong."""


def draft_room(generating: int, max_draft: int) -> int:
    """Draft tokens each generating sequence may carry in one decode. A decode on a small CPU costs little more
    for a few extra tokens only while it holds few sequences: Gemma 3 270M, 2 threads, 800 tokens cached, one
    sequence 35 / 45 / 57 / 62 ms for 1 / 2 / 3 / 4 tokens; two sequences 41 ms for one token each, 55 for two,
    89 for three; three sequences 53 ms for one token each and 103 for two. Beyond two sequences a checked
    guess costs more than the decode it may save."""
    if generating <= 1:
        return max_draft
    return min(max_draft, 1) if generating == 2 else 0


@dataclass
class PromptLookup:
    """An index of one sequence's n-grams to where they last continued, grown as the sequence grows."""

    index: dict[tuple[int, ...], int] = field(default_factory=dict)
    indexed: int = 0
    """Positions below this have been entered as continuations."""
    length: int = 1
    """How many tokens the next draft may have: one more than the last draft's kept part, so a sequence that
    follows its guesses gets longer ones; 0 (the next draft skipped) after a draft it refused from the start."""

    def checked(self, kept: int, max_draft: int) -> None:
        """Adapt the next draft's length to how much of the last one the model kept."""
        self.length = 0 if kept == 0 else min(max_draft, kept + 1)

    def draft(self, context: list[int], max_tokens: int) -> list[int]:
        """Up to `max_tokens` tokens that followed the latest earlier occurrence of the context's last tokens."""
        if self.length == 0:
            self.length = 1
            return []
        max_tokens = min(max_tokens, self.length)
        if max_tokens <= 0:
            return []
        self._grow(context)
        for size in NGRAM_SIZES:
            if len(context) > size:
                at = self.index.get(tuple(context[-size:]))
                if at is not None:
                    return context[at : at + max_tokens]
        return []

    def _grow(self, context: list[int]) -> None:
        """Enter every n-gram that ends before the context's last position, with the position after it (the
        n-gram ending at the very end has no continuation yet)."""
        index = self.index
        for end in range(max(self.indexed, 1), len(context)):
            for size in NGRAM_SIZES:
                if end >= size:
                    index[tuple(context[end - size : end])] = end
        self.indexed = max(self.indexed, len(context))
