"""The GGUF model store: header reader, model facts and memory estimate, the on-disk registry."""

from edge_runtime.store.default_model import (
    DEFAULT_MODEL_ALIAS,
    DEFAULT_MODEL_ID,
    PACKAGED_MODELS,
    DefaultModelUnavailable,
    PackagedModel,
    import_default_model,
    import_packaged_model,
)
from edge_runtime.store.ggml_types import FILE_TYPE_NAMES, GGML_TYPES, GGMLType
from edge_runtime.store.gguf_reader import (
    GGUFFormatError,
    GGUFHeader,
    GGUFValueType,
    ModelFileError,
    TensorInfo,
    UnloadedArray,
    read_gguf_header,
)
from edge_runtime.store.model_info import (
    MemoryEstimate,
    ModelInfo,
    ModelType,
    estimate_memory,
    model_info_from_header,
)
from edge_runtime.store.registry import (
    MODELS_DIR_ENV,
    DuplicateModel,
    ImportProgress,
    InvalidModelId,
    ModelEntry,
    ModelStore,
    StoreCorrupt,
    default_models_dir,
)

__all__ = [
    "DEFAULT_MODEL_ALIAS",
    "DEFAULT_MODEL_ID",
    "FILE_TYPE_NAMES",
    "GGML_TYPES",
    "MODELS_DIR_ENV",
    "PACKAGED_MODELS",
    "DefaultModelUnavailable",
    "DuplicateModel",
    "GGMLType",
    "GGUFFormatError",
    "GGUFHeader",
    "GGUFValueType",
    "ImportProgress",
    "InvalidModelId",
    "MemoryEstimate",
    "ModelEntry",
    "ModelFileError",
    "ModelInfo",
    "ModelStore",
    "ModelType",
    "PackagedModel",
    "StoreCorrupt",
    "TensorInfo",
    "UnloadedArray",
    "default_models_dir",
    "estimate_memory",
    "import_default_model",
    "import_packaged_model",
    "model_info_from_header",
    "read_gguf_header",
]
