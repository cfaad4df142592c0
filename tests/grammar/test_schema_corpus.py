"""A fixed sample of the shared real-world schema corpus (scripts/schema_corpus.py, MaskBench's scoring), so a
coverage regression or a false accept shows in CI.

The sample (schema_corpus_sample.txt) holds a few hundred names chosen by source; each schema compiles strictly
in a worker process with a time limit and its instances are matched in schema key order. No false accept is
allowed anywhere, and the pass count must stay at or above the floor the file records.
"""

from __future__ import annotations

from grammar_support import corpus_module, corpus_sample

TIMEOUT_SECONDS = 60.0
"""Per schema: the sample's compiles take milliseconds idle; the limit only stops a hang."""

CORPUS = corpus_module()


def test_the_sample_names_corpus_schemas_of_every_source() -> None:
    names, floor = corpus_sample()
    assert 200 <= len(names) <= 500 and len(set(names)) == len(names)
    assert set(names) <= set(CORPUS.case_names())
    sources = {CORPUS.source_of(name) for name in names}
    assert len(sources) >= 20  # of the corpus's 21 (Github_ultra's schemas all compile too slowly for CI)
    assert 0 < floor <= len(names)


def test_sample_passes_at_least_its_floor_with_no_false_accept() -> None:
    names, floor = corpus_sample()
    results = list(CORPUS.run_isolated(names, TIMEOUT_SECONDS))
    assert [r.name for r in results] == names
    false_accepts = [f"{r.name}: {r.reason}" for r in results if r.outcome is CORPUS.Outcome.FALSE_ACCEPT]
    assert false_accepts == []
    crashed = [f"{r.name}: {r.reason}" for r in results if r.outcome is CORPUS.Outcome.CRASHED]
    assert crashed == []
    failing = sorted(
        f"{r.name}: {r.outcome.value} {r.reason}" for r in results if r.outcome is not CORPUS.Outcome.PASSED
    )
    passed = len(names) - len(failing)
    assert passed >= floor, "\n".join(failing)
