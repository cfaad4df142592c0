"""Memo keys for the schemas merges make (see `SchemaCompiler.expr`): equal content gets one key, each object
read once per compile. Serializing every merged schema whole cost most of a compile where merges nest large
document schemas (JsonSchemaStore schema: 7,540 serializations, 3.3 of 4.6 s); hashing each node cost a
fifth of the slowest compiles."""

from __future__ import annotations

from typing import Any


class MergedKeys:
    """Hash-consing: a dict or list is keyed by a token interned for its content, a flat tuple of its names
    and its children's tokens, so equal contents share a token and no tuple nests (hashing one is linear in
    its own items). Document schema objects are keyed by identity (the registry keeps them alive); others
    are kept alive here, so no id is reused while the compile runs. Merged schemas are built whole before the
    compiler sees them and never changed after."""

    def __init__(self, originals: set[int]) -> None:
        self._originals = originals
        self._tokens: dict[int, object] = {}
        self._interned: dict[tuple[Any, ...], object] = {}
        self._alive: list[Any] = []

    def key(self, schema: dict[str, Any]) -> object:
        found = self._tokens.get(id(schema))
        return found if found is not None else self._token(schema)

    def _token(self, node: dict[str, Any] | list[Any]) -> object:
        if id(node) in self._originals:
            token: object = ("@", id(node))
        else:
            if isinstance(node, dict):
                content: list[Any] = [dict]
                for name, value in node.items():
                    content.append(name)
                    content.append(self._child(value))
            else:
                content = [list, *map(self._child, node)]
            interned = tuple(content)
            token = self._interned.get(interned)
            if token is None:
                token = self._interned[interned] = object()
        self._tokens[id(node)] = token
        self._alive.append(node)
        return token

    def _child(self, value: Any) -> Any:
        """A child's part of its parent's content: a token, a string as itself, and other scalars with their
        type (1, 1.0 and True are equal in Python, not in a schema); floats and anything else by repr."""
        if isinstance(value, str):
            return value
        if isinstance(value, (dict, list)):
            found = self._tokens.get(id(value))
            return found if found is not None else self._token(value)
        if value is None or isinstance(value, int):  # bool included
            return (type(value), value)
        return (type(value), repr(value))  # floats (-0.0 is not 0.0), and anything not JSON the compiler made
