"""The process that renders chat templates: jinja2's immutable sandbox, under a memory limit, fed by a pipe.

A chat template is a program from a model file. The sandbox stops it from reaching Python's internals but not
from looping for ever (`range` nested in `range`) or building a gigabyte string (`"a" * 10**9`, repeated
doubling, `center` widths): those are bounded here by the process itself. This module runs as
`python -m edge_runtime.engine.template_sandbox`, caps its own address space (RLIMIT_AS), and answers one
request at a time on stdin/stdout (after a first `{"ready": true}` frame); template_worker.py (the server side)
kills it when a render passes its CPU budget.

Frames: an 8-byte little-endian length, then ASCII JSON. A request is `{"op": "compile" | "render", "source",
"variables"}`; a reply is `{"ok": text-or-true}`, `{"error": message}` (the template's own fault, worded for
the client) or `{"limit": what was exceeded, "retire": bool}` (the server names the template).
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections import OrderedDict
from datetime import datetime
from typing import IO, Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from edge_runtime.errors import BadRequest

MEMORY_LIMIT_BYTES = 256 * 2**20
"""Address space a render may add to the renderer process (a conversation of the default 8 MiB body limit
renders in well under this)."""
OUTPUT_LIMIT_CHARS = 16 * 2**20
"""Longest prompt text a template may write: twice the default body limit."""
COMPILED_CACHE_SIZE = 16
FRAME_HEADER = struct.Struct("<Q")


class ChatTemplateError(BadRequest):
    """A chat template failed to compile or render, or the messages cannot be rendered by it."""


class _GenerationBlock(Extension):
    """Accepts HF's `{% generation %}...{% endgeneration %}` (assistant-mask markers) and renders the body."""

    tags = {"generation"}  # noqa: RUF012 (jinja2.ext.Extension declares `tags` as a plain set)

    def parse(self, parser: Any) -> list[nodes.Node]:
        next(parser.stream)
        return list(parser.parse_statements(("name:endgeneration",), drop_needle=True))


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """HF's `tojson`: plain json.dumps (no HTML escaping, non-ASCII kept), unlike jinja2's own filter."""
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(f"chat template refused the conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _make_environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, _GenerationBlock]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


class LimitExceeded(Exception):
    """A render went past one of this process's limits; the message says which."""


class Sandbox:
    """Compiles and renders templates, keeping the last few compiled (a server renders the same few)."""

    def __init__(self) -> None:
        self._environment = _make_environment()
        self._compiled: OrderedDict[str, jinja2.Template] = OrderedDict()

    def compile(self, source: str) -> jinja2.Template:
        found = self._compiled.get(source)
        if found is not None:
            self._compiled.move_to_end(source)
            return found
        try:
            template = self._environment.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ChatTemplateError(
                f"chat template does not compile: {exc.message} (line {exc.lineno})"
            ) from exc
        except RecursionError as exc:
            raise ChatTemplateError("chat template does not compile: it nests too deeply") from exc
        self._compiled[source] = template
        if len(self._compiled) > COMPILED_CACHE_SIZE:
            self._compiled.popitem(last=False)
        return template

    def render(self, source: str, variables: dict[str, Any]) -> str:
        template = self.compile(source)
        try:
            return _bounded_join(template.generate(**variables))
        except ChatTemplateError:
            raise
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(f"chat template failed: {exc.message or type(exc).__name__}") from exc
        except (TypeError, ValueError, LookupError, AttributeError, ArithmeticError, RecursionError) as exc:
            # A template is a program from a model file: its own runtime faults are the template's error.
            raise ChatTemplateError(f"chat template failed: {type(exc).__name__}: {exc}") from exc


def _bounded_join(chunks: Any) -> str:
    parts: list[str] = []
    length = 0
    for chunk in chunks:
        length += len(chunk)
        if length > OUTPUT_LIMIT_CHARS:
            raise LimitExceeded(f"wrote more than {OUTPUT_LIMIT_CHARS >> 20} Mi characters of prompt")
        parts.append(chunk)
    return "".join(parts)


def read_frame(stream: IO[bytes]) -> bytes | None:
    """One frame's payload, or None at a clean end of stream."""
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    (size,) = FRAME_HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return payload


def frame(payload: bytes) -> bytes:
    return FRAME_HEADER.pack(len(payload)) + payload


def _answer(sandbox: Sandbox, request: dict[str, Any]) -> dict[str, Any]:
    try:
        if request["op"] == "compile":
            sandbox.compile(request["source"])
            return {"ok": True}
        return {"ok": sandbox.render(request["source"], request["variables"])}
    except ChatTemplateError as exc:
        return {"error": str(exc)}
    except LimitExceeded as exc:
        return {"limit": str(exc), "retire": False}
    except MemoryError:
        # Python survives a MemoryError, but a fresh process is the cheaper certainty.
        return {"limit": f"needed more than {MEMORY_LIMIT_BYTES >> 20} MiB of memory", "retire": True}


def _limit_memory() -> None:
    """Cap this process's address space at what it has now plus MEMORY_LIMIT_BYTES (Unix only)."""
    try:
        import resource
    except ImportError:
        return
    with open("/proc/self/statm", encoding="ascii") as statm:
        in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = in_use + MEMORY_LIMIT_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the server dies, even mid-render (prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def main() -> None:
    _die_with_parent()
    sandbox = Sandbox()
    sandbox.compile("{{ messages }}")  # imports and warms what every render needs before memory is capped
    try:
        _limit_memory()
    except (OSError, ValueError):
        pass
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(frame(json.dumps({"ready": True}).encode("ascii")))
    stdout.flush()
    while (payload := read_frame(stdin)) is not None:
        reply = _answer(sandbox, json.loads(payload))
        stdout.write(frame(json.dumps(reply).encode("ascii")))
        stdout.flush()
        if reply.get("retire"):
            return


if __name__ == "__main__":
    main()
