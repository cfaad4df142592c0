"""Schema documents by URI for `$ref`: `$id` bases, `$anchor`s, JSON pointers, remote documents on demand.

Each document is copied once with every `$ref` made absolute against its base URI, so the compiler never
tracks bases: a reference means the same thing wherever a merge moves it. Remote documents come only from
the caller's resolver (the compiler never touches the network).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.json_schema.core import CompilerCore
from edge_runtime.grammar.json_schema.keywords import (
    ANNOTATIONS,
    INTERNAL_KEYS,
    SCHEMA_LISTS,
    SCHEMA_MAPS,
    SCHEMA_VALUES,
)

DEFAULT_BASE = "urn:edge-runtime:schema"


def _join(base: str, reference: str) -> str:
    if reference.startswith("#"):
        return urldefrag(base)[0] + reference
    joined = urljoin(base, reference)
    return joined if joined else reference


class SchemaRegistry:
    def __init__(self, resolver: Callable[[str], Any] | None) -> None:
        self.resolver = resolver
        self.resources: dict[str, Any] = {}
        self.anchors: dict[str, Any] = {}

    def add_root(self, schema: Any) -> Any:
        return self.add_document(schema, DEFAULT_BASE)

    def add_document(self, document: Any, uri: str) -> Any:
        normalized = self._normalized(document, uri)
        self.resources.setdefault(uri, normalized)
        return normalized

    def _normalized(self, node: Any, base: str) -> Any:
        if not isinstance(node, dict):
            return node
        own_id = node.get("$id")
        if isinstance(own_id, str) and not own_id.startswith("#"):
            base = urldefrag(_join(base, own_id))[0]
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = _join(base, value)
            elif key in SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: self._normalized(sub, base) for name, sub in value.items()}
            elif key in SCHEMA_LISTS and isinstance(value, list):
                out[key] = [self._normalized(sub, base) for sub in value]
            elif key == "items":
                out[key] = (
                    [self._normalized(s, base) for s in value]
                    if isinstance(value, list)
                    else (self._normalized(value, base))
                )
            elif key in SCHEMA_VALUES:
                out[key] = self._normalized(value, base)
            elif key in INTERNAL_KEYS:
                continue  # what the compiler writes for itself means nothing in a caller's schema
            else:
                out[key] = value
        if isinstance(own_id, str):
            if own_id.startswith("#"):
                self.anchors[_join(base, own_id)] = out
            else:
                self.resources.setdefault(base, out)
        for key in ("$anchor", "$dynamicAnchor"):
            if isinstance(node.get(key), str):
                self.anchors.setdefault(f"{base}#{node[key]}", out)
        return out

    def resolve(self, reference: str, pointer: str) -> Any:
        """The schema `reference` (an absolute URI, as normalized) points to."""
        uri, fragment = urldefrag(reference)
        document = self.resources.get(uri)
        if document is None:
            document = self._fetch(uri, reference, pointer)
        if not fragment:
            return document
        if not fragment.startswith("/"):
            target = self.anchors.get(f"{uri}#{fragment}")
            if target is None:
                raise GrammarError(f"$ref '{reference}' at '{pointer}': no anchor '{fragment}'")
            return target
        node = document
        for raw in unquote(fragment).split("/")[1:]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise GrammarError(f"$ref '{reference}' at '{pointer}' points to nothing")
        return node

    def _fetch(self, uri: str, reference: str, pointer: str) -> Any:
        if self.resolver is None:
            raise GrammarError(
                f"$ref '{reference}' at '{pointer}' is not in this schema (remote references are not fetched)"
            )
        try:
            document = self.resolver(uri)
        except Exception as exc:
            raise GrammarError(f"$ref '{reference}' at '{pointer}' cannot be resolved: {exc}") from exc
        if document is None:
            raise GrammarError(f"$ref '{reference}' at '{pointer}' cannot be resolved")
        return self.add_document(document, uri)


class RefRules(CompilerCore):
    """A `$ref` alone becomes one named rule per target schema (so recursive schemas compile); a `$ref` beside
    other keywords is merged with them (logic)."""

    def with_ref(self, schema: dict[str, Any], pointer: str) -> str | None:
        ref = schema["$ref"]
        if not isinstance(ref, str):
            raise self.invalid(pointer, "$ref must be a string")
        rest = {k: v for k, v in schema.items() if k != "$ref" and k not in ANNOTATIONS}
        if rest:
            return self.expr(self.flatten(schema, pointer), pointer)
        target = self.registry.resolve(ref, pointer)
        if isinstance(target, bool):
            return self.expr(target, pointer)
        key = id(target)
        if key in self.ref_rules:
            return self.ref_rules[key]
        name = self.new_name("ref")
        self.ref_rules[key] = name
        body = self.expr(target, ref)
        self.rules[name] = body if body is not None else "[^\\x00-\\U0010FFFF]"
        return name

