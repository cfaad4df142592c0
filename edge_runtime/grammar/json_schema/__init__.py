"""JSON Schema (draft 2020-12) compiled to llama.cpp GBNF text, then to a `Grammar`.

The grammar generates JSON in one family of layouts:
- Whitespace is bounded: after `{`, `[`, `,` and `:` and before `}` and `]` there may be nothing, one
  space, or one newline and up to 20 spaces (rule `ws`); nothing before or after the value. A model can
  pretty-print but never emit endless whitespace. With `layout="canonical"` (what the API routes ask for,
  `JsonLayout`) the only whitespace is one space after `,` and `:`, as `json_text` writes: the structure
  between two values is then forced, so the decoder writes it without a model step (an extraction answer of
  Gemma 3 270M: 74 tokens pretty-printed, 55 canonical, most of the difference forced).
- Object properties come in schema order (`properties`, then `required` names that `properties` lacks;
  with allOf/$ref, the schema's own properties, then each branch's), optional ones skippable; extra properties (allowed by default, as JSON Schema says, unless
  `additionalProperties` says otherwise) come after them, with keys that differ from every declared name
  and written in one canonical form (controls as `\\n` or `\\u00xx`, nothing else escaped but `"` and `\\`).
  With `closed_objects=True` (what the API routes ask for) an object that declares `properties` and says
  nothing of `additionalProperties` or `unevaluatedProperties` gets no extra properties: a model otherwise
  invents keys until max_tokens. The output stays valid under the schema; `"additionalProperties": true`
  opens an object again.
  Valid JSON with declared properties in another order is therefore rejected: a narrowing, never a widening.
- Integers are exact digit-range grammars of any width; `-0` is zero. Numbers with bounds (or a
  multipleOf) are written without exponent; `1.0` is not generated for an integer, but an enum or const
  number matches every decimal spelling of its value. uniqueItems is enforced when the items are at most 8
  known values (one rule per subset used). multipleOf is exact without bounds or with zero as the only bound
  (a remainder automaton over the digits, for steps of up to 1,000 remainder states) and between bounds
  (steps 10^-k by fraction digit count, others by listing up to 1,000 multiples).

`dependentSchemas` compiles as a conditional on its property being present. `not` and `if`/`then`/`else`
compile when the negated schema's complement can be written as a schema
(negation.py: types, bounds, lengths and counts, consts and enums of scalars, required, properties,
anyOf, double negation); a string other than some given ones is written directly (the canonical spelling of
a string unequal to each). Otherwise they are refused like any keyword the grammar cannot enforce.

A keyword the grammar cannot enforce raises `GrammarError` naming it and its JSON pointer, unless
`lenient=True`, which leaves it out and lists it in `Grammar.unenforced` ("keyword at pointer").
Formats the specification defines but no grammar here checks are refused the same way; formats it does not
define are annotations. Annotations (`title`, `description`, `default`, `examples`, ...) and unknown
keywords are ignored, as the specification says.
"""

from edge_runtime.grammar.json_schema.core import JsonLayout, Resolver, json_text
from edge_runtime.grammar.json_schema.front import (
    compile_checked_schema,
    compile_json_object,
    compile_json_schema,
    json_schema_to_gbnf,
    schema_json,
)

__all__ = [
    "JsonLayout",
    "Resolver",
    "compile_checked_schema",
    "compile_json_object",
    "compile_json_schema",
    "json_schema_to_gbnf",
    "json_text",
    "schema_json",
]
