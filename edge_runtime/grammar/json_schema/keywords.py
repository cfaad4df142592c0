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
FRACTIONAL = "edge-runtime:fractional"
"""Internal (what a negation writes, never read from a request's schema as such): `true` keeps only the numbers
that are not integers (not `{"type": "integer"}`)."""
ALL_PATTERNS = "edge-runtime:allPatterns"
"""Internal: a list of further patterns a string must match, beside `pattern` (allOf of two patterns)."""
NOT_PATTERNS = "edge-runtime:notPatterns"
"""Internal: a list of patterns a string must match none of (not `{"pattern": ...}`)."""
SOME_PROPERTY = "edge-runtime:someProperty"
"""Internal: a list of properties the object must have, each `{"value": schema, ...its keys}`
(key_classes.witness_of): what the negations of additionalProperties, patternProperties and propertyNames say."""
NOT_MULTIPLE_OF = "edge-runtime:notMultipleOf"
"""Internal: a list of whole steps the number must be a multiple of none of (not `{"multipleOf": m}`)."""
INTERNAL_KEYS = (FRACTIONAL, ALL_PATTERNS, NOT_PATTERNS, SOME_PROPERTY, NOT_MULTIPLE_OF)
_GENERAL_KEYS = ("type", "enum", "const", "not", "if", "then", "else", "$dynamicRef", "$recursiveRef")
ASSERTIONS = frozenset(_STRING_KEYS + _NUMBER_KEYS + _OBJECT_KEYS + _ARRAY_KEYS + _GENERAL_KEYS + INTERNAL_KEYS)
"""Keywords that constrain the value (besides the applicators $ref, allOf, anyOf, oneOf)."""
APPLICATORS = frozenset({"$ref", "allOf", "anyOf", "oneOf"})
"""Keywords that constrain the value through other schemas (merged or alternated by the compiler's logic)."""
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies")
"""Keywords whose value maps names to schemas (draft 7's `dependencies`: to schemas or arrays of names)."""
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
"""Keywords whose value is a list of schemas (`items` may be one too, in drafts before 2020-12)."""
SCHEMA_VALUES = (
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
    "contentSchema",
)
"""Keywords whose value is one schema (`items` is one in 2020-12)."""
