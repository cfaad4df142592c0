"""`python -m llama_cpp.server` as the tests' upstream, with the weights loaded as the engine loads them: no
extra buffer types on an AMX build (their kernels die of SIGILL at the first decode), which `Llama` has no
argument for. Run as a script: the arguments are llama_cpp.server's."""

from __future__ import annotations

import sys

import llama_cpp.llama_cpp as binding

from edge_runtime.engine.llama_handles import extra_buffer_types_allowed

_defaults = binding.llama_model_default_params


def _engine_like_defaults() -> binding.llama_model_params:
    params = _defaults()
    params.use_extra_bufts = extra_buffer_types_allowed()
    return params


if __name__ == "__main__":
    binding.llama_model_default_params = _engine_like_defaults
    from llama_cpp.server.__main__ import main

    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    main()
