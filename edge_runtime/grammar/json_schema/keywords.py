"""The JSON Schema keywords the compiler knows, by what they constrain."""

from __future__ import annotations

ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$comment",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "$anchor",
        "$dynamicAnchor",
        "$vocabulary",
        "$defs",
        "definitions",
        "contentMediaType",
        "contentEncoding",
        "contentSchema",
    }
)
TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
_STRING_KEYS = ("minLength", "maxLength", "pattern", "format")
_NUMBER_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_OBJECT_KEYS = (
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
)
_ARRAY_KEYS = (
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedItems",
)
_GENERAL_KEYS = ("type", "enum", "const", "not", "if", "then", "else", "$dynamicRef", "$recursiveRef")
ASSERTIONS = frozenset(_STRING_KEYS + _NUMBER_KEYS + _OBJECT_KEYS + _ARRAY_KEYS + _GENERAL_KEYS)
"""Keywords that constrain the value (besides the applicators $ref, allOf, anyOf, oneOf)."""
