"""Errors the translation layer raises; `param` lets the OpenAI error body name the offending parameter."""

from __future__ import annotations

from edge_runtime.errors import BadRequest


class ParameterError(BadRequest):
    """A request parameter has a value we refuse or cannot honour (HTTP 400 naming the parameter)."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"{param}: {reason}")
        self.param = param
        self.reason = reason
