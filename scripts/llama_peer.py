"""llama-cpp-python's `Llama`, loaded as the engine loads a model, for the benchmarks that compare the two.

`Llama` has no argument for llama.cpp's extra buffer types, and on an AMX build their kernels die of SIGILL at
the first decode; the engine leaves them out there (`extra_buffer_types_allowed`), and so does this. The engine
package is imported first, so that the OpenMP wait policy it sets (unless the environment sets one) is in place
before llama.cpp loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_runtime.engine.llama_handles import extra_buffer_types_allowed

if TYPE_CHECKING:
    from llama_cpp import Llama


def engine_like_llama(model_path: Path, **options: Any) -> Llama:
    import llama_cpp.llama_cpp as binding  # the module Llama reads its model defaults from
    from llama_cpp import Llama

    defaults = binding.llama_model_default_params

    def engine_like_defaults() -> binding.llama_model_params:
        params = defaults()
        params.use_extra_bufts = extra_buffer_types_allowed()
        return params

    binding.llama_model_default_params = engine_like_defaults
    try:
        return Llama(str(model_path), **options)
    finally:
        binding.llama_model_default_params = defaults
