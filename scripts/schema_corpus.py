"""The shared real-world schema corpus (half of MaskBench, see ../shared/schema-corpus/README.md), scored the
way MaskBench scores an engine: a schema passes when it compiles, every valid instance is accepted and every
invalid one rejected.

Schemas compile in strict mode with JSON Schema's own semantics (as the conformance suites compile them: no
`closed_objects`). The grammar writes object keys in schema order, so each instance is re-serialized in that
order before it is matched (see `schema_orderings`). Importable by the benchmark
(scripts/bench_schema_corpus.py) and by tests: `corpus_cases`, `check_case` in process, `run_isolated` in a
worker process with a time limit.
"""

from __future__ import annotations

import gc
import itertools
import json
import multiprocessing
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = REPO_ROOT.parent / "shared" / "schema-corpus" / "maskbench-dev.tar.xz"
CACHE_DIR = REPO_ROOT / ".cache" / "schema-corpus"
"""Where the archive is unpacked once (gitignored); the README says never to commit the unpacked files."""
UNPACKED_NAME = "maskbench-dev"
MAX_ORDERINGS = 16
"""Most key orders tried per instance (one per combination of anyOf/oneOf/if branches met on the way)."""

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


class Outcome(str, Enum):
    PASSED = "pass"
    REFUSED = "refused"
    FALSE_ACCEPT = "false accept"
    FALSE_REJECT = "false reject"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    """An exception other than GrammarError (a bug), or a worker process that died."""


@dataclass(frozen=True)
class CorpusCase:
    name: str
    """The file name without `.json`; its prefix names the source (`source_of`)."""
    schema: Any
    tests: tuple[tuple[Any, bool], ...]
    """(instance, valid) pairs; some schemas have none, and pass by compiling."""

    @property
    def source(self) -> str:
        return source_of(self.name)


@dataclass(frozen=True)
class CaseResult:
    name: str
    outcome: Outcome
    compile_seconds: float = 0.0
    """Wall time of the compile call alone."""
    compile_cpu_seconds: float = 0.0
    """CPU time of the compile call (the fairer number on a shared machine)."""
    check_seconds: float = 0.0
    """Wall time of matching the instances (work a lazy compile defers shows up here)."""
    reason: str = ""
    """For a refusal, what was refused (`refusal_reason`); for a wrong answer or a crash, the first case."""

    @property
    def source(self) -> str:
        return source_of(self.name)


def source_of(name: str) -> str:
    """`Github_easy---o1234` -> `Github_easy`; `BFCL_java_10` -> `BFCL_java`."""
    if "---" in name:
        return name.split("---", 1)[0]
    head, _, tail = name.rpartition("_")
    return head if head and tail.isdigit() else name


def corpus_dir(cache_dir: Path = CACHE_DIR) -> Path:
    """The unpacked corpus, unpacking the shared archive on first use (into a temporary folder renamed into
    place, so concurrent first uses never see a half-unpacked corpus)."""
    target = cache_dir / UNPACKED_NAME
    if target.is_dir():
        return target
    if not ARCHIVE.is_file():
        raise FileNotFoundError(
            f"the schema corpus is expected at {ARCHIVE} (the shared folder beside the repo)"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".unpacking-"))
    try:
        with tarfile.open(ARCHIVE, "r:xz") as archive:
            archive.extractall(staging, filter="data")
        try:
            os.rename(staging / UNPACKED_NAME, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def case_names(cache_dir: Path = CACHE_DIR) -> list[str]:
    return sorted(path.stem for path in corpus_dir(cache_dir).glob("*.json"))


def load_case(name: str, cache_dir: Path = CACHE_DIR) -> CorpusCase:
    data = json.loads((corpus_dir(cache_dir) / f"{name}.json").read_text(encoding="utf-8"))
    tests = tuple((test["data"], bool(test["valid"])) for test in data.get("tests") or ())
    return CorpusCase(name, data["schema"], tests)


def corpus_cases(names: Iterable[str] | None = None, cache_dir: Path = CACHE_DIR) -> Iterator[CorpusCase]:
    for name in case_names(cache_dir) if names is None else names:
        yield load_case(name, cache_dir)


def sample_names(per_source: int, cache_dir: Path = CACHE_DIR) -> list[str]:
    """A fixed sample: the first `per_source` names of each source in name order (stable across runs)."""
    by_source: dict[str, list[str]] = {}
    for name in case_names(cache_dir):
        by_source.setdefault(source_of(name), []).append(name)
    return sorted(name for names in by_source.values() for name in names[:per_source])


# ------------------------------------------------------------------------------------------ key order


class _Views:
    """Expands a schema into its alternative views: each a list of schema objects that all apply, in the
    order the compiler meets their properties (the object's own, then $ref, allOf, the chosen anyOf/oneOf
    branch, then/else). References resolve through the compiler's own registry."""

    def __init__(self, root: Any) -> None:
        from edge_runtime.grammar.json_schema.refs import SchemaRegistry

        self.registry = SchemaRegistry(None)
        self.root = self.registry.add_root(root)

    def of(self, schema: Any, depth: int = 0) -> list[list[dict[str, Any]]]:
        if not isinstance(schema, dict) or depth > 32:
            return [[]]
        parts: list[list[list[dict[str, Any]]]] = [[[schema]]]
        if isinstance(schema.get("$ref"), str):
            from edge_runtime.grammar import GrammarError

            try:
                parts.append(self.of(self.registry.resolve(schema["$ref"], "#"), depth + 1))
            except GrammarError:  # unresolvable: what it declares keeps the instance's order
                parts.append([[]])
        for branch in schema.get("allOf") or ():
            parts.append(self.of(branch, depth + 1))
        for keyword in ("anyOf", "oneOf"):
            if isinstance(schema.get(keyword), list):
                parts.append([view for branch in schema[keyword] for view in self.of(branch, depth + 1)])
        if "if" in schema:
            parts.append(
                self.of(schema.get("then", {}), depth + 1) + self.of(schema.get("else", {}), depth + 1)
            )
        views: list[list[dict[str, Any]]] = []
        for combination in itertools.islice(itertools.product(*parts), MAX_ORDERINGS):
            views.append([member for view in combination for member in view])
        return views


def schema_orderings(schema: Any, instance: Any, views: _Views | None = None) -> list[Any]:
    """`instance` with its object keys in the orders the grammar may write them: declared properties in
    schema order (`properties`, then `required` names they lack), the others after them in their own order;
    one ordering per combination of anyOf/oneOf/if branches met, the first MAX_ORDERINGS distinct ones.
    Pass `views` (`_Views(schema)`) to reuse the resolved schema across instances."""
    views = views or _Views(schema)
    return _distinct(_orderings(views, views.root, instance))


def _distinct(orderings: Iterator[Any]) -> list[Any]:
    found: dict[str, Any] = {}
    for ordered in itertools.islice(orderings, MAX_ORDERINGS * 4):
        found.setdefault(json.dumps(ordered, ensure_ascii=False), ordered)
        if len(found) >= MAX_ORDERINGS:
            break
    return list(found.values())


def _orderings(views: _Views, schema: Any, instance: Any) -> Iterator[Any]:
    if isinstance(instance, list):
        slots = [
            _distinct(_orderings(views, _item_schema(views, schema, index), item))
            for index, item in enumerate(instance)
        ]
        for items in itertools.product(*slots):
            yield list(items)
        return
    if not isinstance(instance, dict):
        yield instance
        return
    for view in views.of(schema):
        declared: list[str] = []
        for member in view:
            properties = member.get("properties")
            declared.extend(properties if isinstance(properties, dict) else ())
        for member in view:
            required = member.get("required")
            if isinstance(required, list):
                declared.extend(name for name in required if isinstance(name, str))
        rank = {name: index for index, name in enumerate(dict.fromkeys(declared))}
        keys = sorted(instance, key=lambda key: rank.get(key, len(rank)))
        values = [_distinct(_orderings(views, _property_schema(view, key), instance[key])) for key in keys]
        for combination in itertools.product(*values):
            yield dict(zip(keys, combination))


def _property_schema(view: list[dict[str, Any]], key: str) -> Any:
    found = [
        member["properties"][key]
        for member in view
        if isinstance(member.get("properties"), dict) and key in member["properties"]
    ]
    found += [sub for member in view for sub in _matching_pattern_schemas(member, key)]
    if not found:
        found = [
            member["additionalProperties"]
            for member in view
            if isinstance(member.get("additionalProperties"), dict)
        ]
    return {"allOf": found} if found else {}


def _matching_pattern_schemas(member: dict[str, Any], key: str) -> list[Any]:
    """The patternProperties schemas whose pattern matches `key` (their automata, as the compiler reads them)."""
    from edge_runtime.grammar import GrammarError
    from edge_runtime.grammar.json_schema.char_dfa import pattern_dfa

    patterns = member.get("patternProperties")
    if not isinstance(patterns, dict):
        return []
    found = []
    for pattern, sub in patterns.items():
        try:
            if pattern_dfa(pattern).matches(key):
                found.append(sub)
        except GrammarError:
            continue
    return found


def _item_schema(views: _Views, schema: Any, index: int) -> Any:
    found = []
    for view in views.of(schema):
        for member in view:
            prefix = member.get(
                "prefixItems", member.get("items") if isinstance(member.get("items"), list) else None
            )
            if isinstance(prefix, list) and index < len(prefix):
                found.append(prefix[index])
            elif isinstance(member.get("items"), dict):
                found.append(member["items"])
        break  # the items of the first view; arrays under anyOf branches rarely differ in key order
    return {"allOf": found} if found else {}


# ------------------------------------------------------------------------------------------ checking


_KEYWORD = re.compile(r"JSON Schema keyword '([^']+)'")


def refusal_reason(message: str) -> str:
    """A short class for a GrammarError's reason: the keyword it names, or what kind of limit it hit."""
    named = _KEYWORD.search(message)
    if named:
        return named.group(1)
    for needle, reason in (
        ("not in this schema", "remote $ref"),
        ("no anchor", "$ref anchor"),
        ("points to nothing", "$ref target"),
        ("nest too deep", "$ref/allOf depth"),
        ("too deeply nested", "nesting depth"),
        ("invalid schema", "invalid schema"),
        ("characters", "size limit"),
        ("too many", "size limit"),
        ("above", "repetition limit"),
        ("accepts no value", "accepts nothing"),
        ("left-recursive", "left recursion"),
        ("left recursion", "left recursion"),
        ("never finish", "endless recursion"),
        ("nested too deeply", "nesting depth"),
    ):
        if needle in message:
            return reason
    return "other: " + message[:60]


def check_case(case: CorpusCase) -> CaseResult:
    """Compile `case.schema` strictly and match every instance (in each of its schema orderings)."""
    from edge_runtime.grammar.json_schema import json_text

    compiled = _timed_compile(case, closed_objects=False)
    if isinstance(compiled, CaseResult):
        return compiled
    grammar, timing = compiled
    checked = time.perf_counter()
    outcome, reason = Outcome.PASSED, ""
    views = _Views(case.schema)
    for index, (instance, valid) in enumerate(case.tests):
        try:
            texts = [json_text(ordered) for ordered in schema_orderings(case.schema, instance, views)]
        except ValueError:  # NaN or infinity: not JSON text any grammar writes
            continue
        accepted = any(grammar.matches(text) for text in texts)
        if accepted and not valid:
            outcome, reason = Outcome.FALSE_ACCEPT, f"test {index}: {texts[0][:120]}"
            break
        if valid and not accepted and outcome is Outcome.PASSED:
            outcome, reason = Outcome.FALSE_REJECT, f"test {index}: {texts[0][:120]}"
    check_seconds = time.perf_counter() - checked
    return CaseResult(case.name, outcome, reason=reason, check_seconds=check_seconds, **timing)


def time_server_compile(case: CorpusCase) -> CaseResult:
    """Only compile `case.schema`, the way the server compiles a response_format for generation: strict, with
    `closed_objects` (an object without additionalProperties gets no extra properties). The instances are
    not matched: they are written for JSON Schema's open objects. Passed means compiled."""
    compiled = _timed_compile(case, closed_objects=True)
    return compiled if isinstance(compiled, CaseResult) else CaseResult(case.name, Outcome.PASSED, **compiled[1])


def _timed_compile(case: CorpusCase, *, closed_objects: bool) -> CaseResult | tuple[Any, dict[str, float]]:
    """The grammar of `case.schema` and the compile's wall and CPU time, or the REFUSED or CRASHED result. The
    compile starts on a collected heap with older objects frozen, so collections of what earlier cases left
    alive (the compiler's own cache, in a long run) are not billed to this schema."""
    from edge_runtime.grammar import GrammarError, compile_json_schema

    gc.collect()
    gc.freeze()  # what earlier cases left alive is not scanned by collections this compile triggers
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        grammar = compile_json_schema(case.schema, closed_objects=closed_objects)
    except GrammarError as exc:
        return CaseResult(case.name, Outcome.REFUSED, reason=refusal_reason(exc.reason), **_since(wall, cpu))
    except Exception as exc:  # noqa: BLE001 - a bug in the compiler, counted and reported as such
        return CaseResult(
            case.name, Outcome.CRASHED, reason=f"{type(exc).__name__}: {exc}"[:200], **_since(wall, cpu)
        )
    return grammar, _since(wall, cpu)


def _since(wall: float, cpu: float) -> dict[str, float]:
    return {"compile_seconds": time.perf_counter() - wall, "compile_cpu_seconds": time.process_time() - cpu}


# ------------------------------------------------------------------------------------------ isolation


def _worker(connection: Connection, cache_dir: str, server_mode: bool) -> None:
    """Checks the cases named on `connection` (or, in server mode, times their compile alone), one at a time,
    until it receives None. Says "ready" once the grammar package is imported and warm, so no case pays for
    imports."""
    run = time_server_compile if server_mode else check_case
    run(CorpusCase("warm-up", {"type": "object", "properties": {"a": {"type": "string"}}}, ()))
    connection.send("ready")
    while True:
        name = connection.recv()
        if name is None:
            return
        connection.send(run(load_case(name, Path(cache_dir))))


class _Worker:
    STARTUP_SECONDS = 120.0

    def __init__(self, cache_dir: Path, server_mode: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, str(cache_dir), server_mode), daemon=True)
        self.process.start()
        child.close()
        if not self.connection.poll(self.STARTUP_SECONDS) or self.connection.recv() != "ready":
            self.close(kill=True)
            raise RuntimeError("the corpus worker process did not start")

    def check(self, name: str, timeout: float) -> CaseResult | Outcome:
        """The result; or TIMEOUT / CRASHED, and then the worker is gone."""
        self.connection.send(name)
        try:
            if self.connection.poll(timeout):
                result: CaseResult = self.connection.recv()
                return result
            outcome = Outcome.TIMEOUT
        except (EOFError, OSError):
            outcome = Outcome.CRASHED
        self.close(kill=True)
        return outcome

    def close(self, kill: bool = False) -> None:
        if not kill:
            try:
                self.connection.send(None)
            except OSError:
                kill = True
        if kill:
            self.process.kill()
        self.process.join()
        self.connection.close()
        self.process.close()


def run_isolated(
    names: Iterable[str], timeout: float, cache_dir: Path = CACHE_DIR, *, server_mode: bool = False
) -> Iterator[CaseResult]:
    """Checks each case in one worker process (one core), killed and replaced when a case takes longer than
    `timeout` seconds (TIMEOUT) or dies (CRASHED); with `server_mode`, `time_server_compile` instead."""
    corpus_dir(cache_dir)
    worker: _Worker | None = None
    try:
        for name in names:
            if worker is None:
                worker = _Worker(cache_dir, server_mode)
            started = time.perf_counter()
            result = worker.check(name, timeout)
            if isinstance(result, Outcome):
                worker = None
                yield CaseResult(name, result, compile_seconds=time.perf_counter() - started)
            else:
                yield result
    finally:
        if worker is not None:
            worker.close()
