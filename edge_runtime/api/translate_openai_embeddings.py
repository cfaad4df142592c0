"""OpenAI `/v1/embeddings` requests to texts, and vectors back to the response (floats or base64)."""

from __future__ import annotations

import base64

import numpy as np

from edge_runtime.api import openai_types as ot
from edge_runtime.api.errors import ParameterError


def embedding_texts(request: ot.EmbeddingRequest) -> list[str]:
    if isinstance(request.input, str):
        return [request.input]
    if not request.input:
        raise ParameterError("input", "at least one input is required")
    if not all(isinstance(item, str) for item in request.input):
        raise ParameterError("input", "token arrays are not supported for embeddings; send text")
    return list(request.input)  # type: ignore[arg-type]


def embedding_response(
    request: ot.EmbeddingRequest, vectors: list[list[float]], prompt_tokens: int
) -> ot.CreateEmbeddingResponse:
    """base64 is the little-endian float32 bytes of each vector (what the openai SDK asks for by default)."""
    data: list[ot.Embedding] = []
    for index, vector in enumerate(vectors):
        if request.encoding_format == "base64":
            encoded: list[float] | str = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode(
                "ascii"
            )
        else:
            encoded = vector
        data.append(ot.Embedding(embedding=encoded, index=index))
    return ot.CreateEmbeddingResponse(
        data=data,
        model=request.model,
        usage=ot.EmbeddingUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens),
    )
