"""Named engine settings for the machines edge-runtime serves on (`edge-runtime serve --profile NAME`); the
serve flags that set a value (`--slots`, `--ctx`, ...) override the profile's. Cheap to import (the CLI parses
its arguments with it): llama.cpp loads only when a profile's settings are asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from edge_runtime.engine.loaded_model import EngineConfig

ProfileName = Literal["default", "small"]
PROFILE_NAMES: tuple[ProfileName, ...] = get_args(ProfileName)


def profile_config(name: ProfileName) -> EngineConfig:
    """small: for boards with 1-2 GB beside other programs. One slot of 2,048 tokens, a q8_0 KV cache, a
    64-token micro-batch (half the compute buffer; prompts read about 13% slower), the model file mapped
    rather than read (its pages are page cache the kernel can reclaim; see LlamaModel for the risk), and
    loaded models' estimated total held to 1 GiB: a model that cannot fit is refused before it is loaded."""
    from edge_runtime.engine.loaded_model import EngineConfig

    if name == "small":
        return EngineConfig(
            n_slots=1,
            n_ctx_per_slot=2048,
            n_batch=256,
            n_ubatch=64,
            queue_size=8,
            kv_cache_type="q8_0",
            mmap=True,
            embedding_seqs=2,
            memory_budget_bytes=1 << 30,
        )
    return EngineConfig()
