"""Memo keys for `expr` and `flatten`: schemas that say the same get one key, wherever they sit and whoever
made them. Serializing every merged schema whole cost most of a compile where merges nest large document
schemas (JsonSchemaStore schema: 7,540 serializations, 3.3 of 4.6 s). Keying the document's own schemas by
identity compiled each copy of a repeated definition again, and each schema that differed from another only
in its description (Kubernetes kb_802: 618 schemas compiled, 235 distinct)."""

from __future__ import annotations

from typing import Any

from edge_runtime import _native
from edge_runtime.grammar.json_schema.keywords import ANNOTATIONS, SCHEMA_LISTS, SCHEMA_MAPS, SCHEMA_VALUES

ANNOTATION, NAMED_SCHEMAS, SCHEMA_LIST, ONE_SCHEMA, ONE_OR_LIST = range(5)
KINDS = {
    **dict.fromkeys(SCHEMA_MAPS, NAMED_SCHEMAS),
    **dict.fromkeys(SCHEMA_LISTS, SCHEMA_LIST),
    **dict.fromkeys(SCHEMA_VALUES, ONE_SCHEMA),
    "items": ONE_OR_LIST,
    **dict.fromkeys(ANNOTATIONS, ANNOTATION),
}
"""What each keyword's value is to the key (native/schema_key.c's KIND_*): schemas by name, a list of
schemas, one schema, either of the last two (`items`), or nothing (an annotation). Any other keyword's value
is keyed as plain JSON."""


class MergedKeys:
    """Hash-consing, in C (native/schema_key.c): a dict or list is keyed by a token interned for its content,
    a flat tuple of its names and its children's tokens, so equal contents share a token and no tuple nests
    (hashing one is linear in its own items). A schema's content leaves out its annotations (nothing the
    compiler reads; `$ref`s are absolute by now, so `$id` and `$defs` say nothing more) and keys its
    subschemas as schemas; every other value (`const`, `enum`, internal keywords) is keyed whole. Each node
    is kept alive here, so no id is reused while the compile runs; merged schemas are built whole before the
    compiler sees them and never changed after."""

    def __init__(self) -> None:
        self._schemas: dict[int, object] = {}
        self._state: tuple[object, ...] = (self._schemas, {}, {}, [], KINDS, object(), object())
        """schema_key's memos (schemas, plain values, interned contents), what it keeps alive, the kinds,
        and the markers that start a schema's and a map's content."""

    def key(self, schema: dict[str, Any]) -> object:
        found = self._schemas.get(id(schema))
        return found if found is not None else _native.schema_key(schema, *self._state)
