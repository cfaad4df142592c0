"""edge-runtime: a CPU-first inference runtime for GGUF models with grammar-constrained decoding."""

__version__ = "0.1.0"
