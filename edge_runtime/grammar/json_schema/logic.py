"""Schema logic: rewriting negations and conditionals, merging allOf, alternatives and their disjointness."""

from __future__ import annotations

from functools import partial
from typing import Any

from edge_runtime.grammar.errors import GrammarError
from edge_runtime.grammar.json_schema.core import MAX_BRANCHES, CompilerCore, alt, json_type, value_key
from edge_runtime.grammar.json_schema.keywords import (
    ALL_PATTERNS,
    ANNOTATIONS,
    ASSERTIONS,
    FRACTIONAL,
    NOT_MULTIPLE_OF,
    NOT_PATTERNS,
    SOME_PROPERTY,
    TYPES,
)
from edge_runtime.grammar.json_schema.negation import (
    Negator,
    conditional,
    string_exclusion,
    without_dependent_schemas,
    without_not,
)

_MODIFIERS = {"minContains": "contains", "maxContains": "contains", "then": "if", "else": "if"}
"""Keywords that act only beside another in the same schema object (and do nothing without it)."""


def _without_orphans(schema: Any) -> Any:
    """`schema` without modifiers whose keyword is absent, and without an `if` that has neither `then` nor
    `else`: merged into another schema object (allOf, $ref) they would act with that object's keywords, which
    the specification says they never see."""
    if not isinstance(schema, dict):
        return schema
    lone_if = "if" in schema and "then" not in schema and "else" not in schema
    if not lone_if and not any(key in schema and base not in schema for key, base in _MODIFIERS.items()):
        return schema
    return {
        key: value
        for key, value in schema.items()
        if not (key == "if" and lone_if) and (key not in _MODIFIERS or _MODIFIERS[key] in schema)
    }


def _common_types(mine: Any, theirs: Any) -> list[str]:
    """The types (JSON Schema names, in TYPES order) a value may have under both `type` keywords (their values
    or their checked names)."""
    left = set(mine) if isinstance(mine, list) else {mine}
    right = set(theirs) if isinstance(theirs, list) else {theirs}
    integers = {"integer"} if ("integer" in left and "number" in right) or ("number" in left and "integer" in right) else set()
    both = (left & right) | integers
    return [t for t in TYPES if t in both]


def _may_be_string(schema: dict[str, Any]) -> bool:
    declared = schema.get("type", "string")
    return "string" in (declared if isinstance(declared, list) else [declared])


def excludes_strings(schema: dict[str, Any]) -> bool:
    """A string schema whose `not` lists strings: string() writes it (a string unequal to each), no rewrite."""
    return schema.get("type") in ("string", ["string"]) and string_exclusion(schema.get("not")) is not None


class LogicRules(CompilerCore):
    """Schema logic before any GBNF: `not`, `if` and `dependentSchemas` rewritten as anyOf/allOf (negation.py),
    allOf and $ref merged into one schema, anyOf/oneOf as alternatives (oneOf only over disjoint branches)."""

    def without_logic(self, schema: dict[str, Any], pointer: str) -> dict[str, Any]:
        """`schema` with `dependentSchemas`, `if`/`then`/`else` and `not` written as anyOf/allOf where their
        negation can be written (see negation.py); what cannot be stays, for plain() to refuse by name."""
        def resolve(sub: Any) -> Any:
            return self.resolved(sub, pointer)

        if any(schema.get(key, True) not in (True, {}) for key in ("unevaluatedProperties", "unevaluatedItems")):
            return schema  # what `not` and a failed `if` evaluate must not count as evaluated; allOf's would
        out = schema
        if out.get("dependentSchemas") or isinstance(out.get("dependencies"), dict):
            out = without_dependent_schemas(out, resolve)
        if "if" in out and ("then" in out or "else" in out):
            out = conditional(out, resolve) or out
        if "not" in out and string_exclusion(out["not"]) is not None and not _may_be_string(out):
            out = {key: value for key, value in out.items() if key != "not"}  # it only excludes strings
        if "not" in out and not excludes_strings(out):
            out = without_not(out, resolve) or out
        return out

    # -------------------------------------------------------------------------------- allOf

    def resolved(self, schema: Any, pointer: str) -> Any:
        """`schema` without $ref or allOf at its top: those are merged into one schema."""
        if isinstance(schema, dict) and ("$ref" in schema or "allOf" in schema):
            return self.flatten(schema, pointer)
        return schema

    def flatten(self, schema: dict[str, Any], pointer: str) -> Any:
        """`schema` with its $ref and allOf merged in. Memoized like `expr` (the same merges come back with
        every alternative over a shared base: 28,207 of 42,431 in Github_medium o65942): the same object
        back, so its memo key is found by identity."""
        key = self.merged_keys.key(schema)  # memoized as `expr` is, inline for the same reason
        if key in self.flattened:
            return self.flattened[key]
        unenforced = len(self.unenforced)
        merged = self._flatten(schema, pointer)
        if len(self.unenforced) == unenforced:
            self.flattened[key] = merged
        return merged

    def _flatten(self, schema: dict[str, Any], pointer: str) -> Any:
        self.merge_depth += 1
        try:
            if self.merge_depth > 32:
                raise GrammarError(f"schema at '{pointer}': $ref/allOf nest too deep (a reference cycle?)")
            merged: Any = _without_orphans({k: v for k, v in schema.items() if k not in ("$ref", "allOf")})
            parts: list[tuple[Any, str]] = []
            if "$ref" in schema:
                parts.append((self.registry.resolve(schema["$ref"], pointer), schema["$ref"]))
            branches = schema.get("allOf", [])
            if not isinstance(branches, list) or not branches and "allOf" in schema:
                raise self.invalid(pointer, "allOf must be a non-empty array")
            parts.extend((branch, f"{pointer}/allOf/{index}") for index, branch in enumerate(branches))
            for part, where in parts:
                branch = _without_orphans(self.resolved(part, where))
                for keyword in ("unevaluatedProperties", "unevaluatedItems"):
                    if isinstance(branch, dict) and branch.get(keyword, True) not in (True, {}):
                        self.unenforceable(keyword, where, "inside an applicator it sees only its own branch")
                merged = self.merge(merged, branch, pointer)
                if merged is False:
                    break  # nothing is left to accept: the other parts need not be read
            return merged
        finally:
            self.merge_depth -= 1

    def merge(self, a: Any, b: Any, pointer: str) -> Any:
        """One schema accepting exactly what both accept (refusing what cannot be merged)."""
        if a is False or b is False:
            return False
        if a is True or a == {}:
            return b
        if b is True or b == {}:
            return a
        if not isinstance(a, dict) or not isinstance(b, dict):
            raise self.invalid(pointer, "a schema must be an object or a boolean")
        if "type" in a and "type" in b and not _common_types(
            self.type_names(a["type"], pointer), self.type_names(b["type"], pointer)
        ):
            return False  # no value has a type both allow: nothing else in either matters (oneOf's negations
            # meet this all the time: Github_medium o9802, 8,707 of 11,717 merges)
        b = self.detached(a, b, pointer)
        if not isinstance(b, dict):
            return self.merge(a, b, pointer)
        out: dict[str, Any] = {k: v for k, v in a.items() if k not in ANNOTATIONS}
        for key, value in b.items():
            if key in ANNOTATIONS:
                continue
            if key not in out:
                out[key] = value
                continue
            mine = out[key]
            if key == "type":
                out[key] = _common_types(mine, value)
            elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"):
                out[key] = max(mine, value)
            elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"):
                out[key] = min(mine, value)
            elif key == "required":
                out[key] = list(dict.fromkeys(list(mine) + list(value)))
            elif key in ("enum", "const"):
                continue
            elif key == "pattern" and mine != value:
                out[ALL_PATTERNS] = list(dict.fromkeys([*out.get(ALL_PATTERNS, []), value]))
            elif key in (ALL_PATTERNS, NOT_PATTERNS, NOT_MULTIPLE_OF):
                out[key] = list(dict.fromkeys([*mine, *value]))
            elif key == SOME_PROPERTY:
                out[key] = [*mine, *(spec for spec in value if spec not in mine)]
            elif key in ("additionalProperties", "items", "propertyNames"):
                out[key] = {"allOf": [mine, value]} if mine != value else mine
            elif key == "not":
                excluded = [string_exclusion(x) for x in (mine, value)]
                if excluded[0] is not None and excluded[1] is not None:
                    out[key] = {"enum": list(dict.fromkeys(excluded[0] + excluded[1]))}  # string() writes it
                else:
                    out[key] = {"anyOf": [mine, value]} if mine != value else mine
            elif key == "properties" or key == "prefixItems":
                continue
            elif key == "anyOf":
                out[key] = [{"allOf": [x, y]} for x in mine for y in value]
                if len(out[key]) > MAX_BRANCHES:
                    raise GrammarError(
                        f"schema at '{pointer}': allOf of anyOf branches has too many combinations"
                    )
            elif mine != value and (key in ASSERTIONS or key == "oneOf"):
                self.unenforceable("allOf", pointer, f"two different '{key}' cannot be combined")
        for x, y in ((a, b), (b, a)):
            if x.get("patternProperties") and y.get("additionalProperties", True) not in (True, {}):
                self.unenforceable("allOf", pointer, "patternProperties beside another branch's additionalProperties")
        value_sets = [self.finite_values(x) for x in (a, b)]
        if any(values is not None for values in value_sets):
            out.pop("const", None)
            known = [values for values in value_sets if values is not None]
            common = known[0]
            for values in known[1:]:
                keys = {value_key(v) for v in values}
                common = [v for v in common if value_key(v) in keys]
            out["enum"] = common
        self.merge_properties(a, b, out)
        if out.get("type") in ("object", ["object"]) and any(
            out.get("properties", {}).get(name, True) is False for name in out.get("required", ())
        ):
            return False  # an object that must have a property no value may have
        self.merge_prefix_items(a, b, out)
        return out

    def detached(self, a: dict[str, Any], b: dict[str, Any], pointer: str) -> Any:
        """`b` ready to merge into `a` when both hold a conditional or a oneOf that differ (one schema object
        holds one of each): `b`'s written out as alternatives first (an anyOf merges with anything)."""
        if "if" in a and "if" in b and any(a.get(k) != b.get(k) for k in ("if", "then", "else")):
            rewritten = conditional(b, partial(self.resolved, pointer=pointer)) if "then" in b or "else" in b else None
            if rewritten is not None:
                b = self.resolved(rewritten, pointer)
        unevaluated = any(
            x.get(k, True) not in (True, {}) for x in (a, b) for k in ("unevaluatedProperties", "unevaluatedItems")
        )
        if (
            isinstance(b, dict)
            and isinstance(b.get("oneOf"), list)
            and b["oneOf"]
            and "oneOf" in a
            and a["oneOf"] != b["oneOf"]
            and not unevaluated
        ):
            rest = {key: value for key, value in b.items() if key != "oneOf"}
            alternatives = {"anyOf": self.exclusive(b["oneOf"], pointer)}
            b = self.resolved({**rest, "allOf": [*rest.get("allOf", []), alternatives]}, pointer)
        return b

    @staticmethod
    def merge_properties(a: dict[str, Any], b: dict[str, Any], out: dict[str, Any]) -> None:
        if "properties" not in a and "properties" not in b:
            return
        props_a = a.get("properties") or {}
        props_b = b.get("properties") or {}
        extra_a = a.get("additionalProperties", True)
        extra_b = b.get("additionalProperties", True)
        merged: dict[str, Any] = {}
        for name in list(props_a) + [n for n in props_b if n not in props_a]:
            left = props_a.get(name, extra_a)
            right = props_b.get(name, extra_b)
            merged[name] = (
                False
                if left is False or right is False
                else left
                if right is True or right == left
                else right
                if left is True
                else {"allOf": [left, right]}
            )
        out["properties"] = merged

    @staticmethod
    def merge_prefix_items(a: dict[str, Any], b: dict[str, Any], out: dict[str, Any]) -> None:
        if "prefixItems" not in a and "prefixItems" not in b:
            return
        left, right = a.get("prefixItems") or [], b.get("prefixItems") or []
        rest_a, rest_b = a.get("items", True), b.get("items", True)
        merged = []
        for index in range(max(len(left), len(right))):
            x = left[index] if index < len(left) else rest_a
            y = right[index] if index < len(right) else rest_b
            merged.append(x if y is True else y if x is True else {"allOf": [x, y]})
        out["prefixItems"] = merged

    # -------------------------------------------------------------------------------- anyOf / oneOf

    def alternatives(self, schema: dict[str, Any], pointer: str) -> str | None:
        keyword = "anyOf" if "anyOf" in schema else "oneOf"
        branches = schema[keyword]
        if not isinstance(branches, list) or not branches:
            raise self.invalid(pointer, f"{keyword} must be a non-empty array")
        base = {k: v for k, v in schema.items() if k != keyword}
        has_base = any(k not in ANNOTATIONS for k in base)
        # what a negation evaluates must not count as evaluated: beside unevaluated* no rewrite (as without_logic)
        unevaluated = any(base.get(k, True) not in (True, {}) for k in ("unevaluatedProperties", "unevaluatedItems"))
        rewrite = keyword == "oneOf" and not unevaluated
        exclusive = self.exclusive(branches, pointer) if rewrite else branches
        if keyword == "oneOf" and not rewrite:
            self.require_disjoint(branches, pointer)
        try:
            options = self.branch_options(keyword, base if has_base else None, exclusive, pointer)
        except GrammarError as exc:
            if exclusive is branches:
                raise
            # the negations made it too big (or hold what cannot be enforced): refused by name, or in
            # lenient mode the branches as they are, overlap unenforced
            self.unenforceable("oneOf", pointer, f"its branches made exclusive: {exc.reason}")
            options = self.branch_options(keyword, base if has_base else None, branches, pointer)
        return self.rule("any", alt(options))

    def branch_options(
        self, keyword: str, base: dict[str, Any] | None, branches: list[Any], pointer: str
    ) -> list[str | None]:
        options = []
        for index, branch in enumerate(branches):
            where = f"{pointer}/{keyword}/{index}"
            combined = {**base, "allOf": [*base.get("allOf", []), branch]} if base is not None else branch
            options.append(self.expr(combined, where))
        return options

    def require_disjoint(self, branches: list[Any], pointer: str) -> None:
        flat = [self.resolved(b, f"{pointer}/oneOf/{i}") for i, b in enumerate(branches)]
        live = [b for b in flat if b is not False]
        if not all(self.disjoint(x, y) for i, x in enumerate(live) for y in live[i + 1 :]):
            self.unenforceable("oneOf", pointer, "its branches may overlap (only disjoint ones compile here)")

    def exclusive(self, branches: list[Any], pointer: str) -> list[Any]:
        """oneOf's branches made mutually exclusive: as they are when no two can overlap, else each one
        without the values of the branches it may overlap (branch i and not branch j, the negation written
        by negation.py); refused by name when such a negation cannot be written."""
        flat = [self.resolved(b, f"{pointer}/oneOf/{i}") for i, b in enumerate(branches)]
        overlaps = {
            i: [j for j, y in enumerate(flat) if j != i and y is not False and not self.disjoint(x, y)]
            for i, x in enumerate(flat)
            if x is not False
        }
        if not any(overlaps.values()):
            return branches
        resolve = partial(self.resolved, pointer=pointer)
        negate = Negator(resolve, self.disjoint)
        negations = {j: negate(flat[j]) for js in overlaps.values() for j in js}
        if any(negated is None for negated in negations.values()):
            self.unenforceable("oneOf", pointer, "its branches may overlap and one has no negation here")
            return branches
        return [
            {"allOf": [branch, *(negations[j] for j in overlaps[i])]} if overlaps.get(i) else branch
            for i, branch in enumerate(branches)
        ]

    def types_of(self, schema: Any) -> set[str]:
        if schema is False:
            return set()
        if not isinstance(schema, dict):
            return set(TYPES)
        if "const" in schema:
            return {json_type(schema["const"])} | (
                {"number"} if json_type(schema["const"]) == "integer" else set()
            )
        if "enum" in schema and isinstance(schema["enum"], list):
            found = {json_type(v) for v in schema["enum"]}
            return found | ({"number"} if "integer" in found else set())
        declared = schema.get("type")
        names = set(TYPES) if declared is None else set(declared) if isinstance(declared, list) else {declared}
        if schema.get(FRACTIONAL) is True:
            return names - {"integer"}  # only numbers that are not integers
        return names | ({"integer"} if "number" in names else set())

    def disjoint(self, a: Any, b: Any) -> bool:
        """Whether no value can satisfy both (checked on types, constants and required constant properties)."""
        if a is False or b is False:
            return True
        if not isinstance(a, dict) or not isinstance(b, dict):
            return False
        if not (self.types_of(a) & self.types_of(b)):
            return True
        values_a, values_b = self.finite_values(a), self.finite_values(b)
        if values_a is not None and values_b is not None:
            return not ({value_key(v) for v in values_a} & {value_key(v) for v in values_b})
        if self.types_of(a) & self.types_of(b) <= {"object"}:
            props_a, props_b = a.get("properties") or {}, b.get("properties") or {}
            for name in set(a.get("required") or []) & set(b.get("required") or []):
                if (
                    name in props_a
                    and name in props_b
                    and self.disjoint(self.resolved(props_a[name], ""), self.resolved(props_b[name], ""))
                ):
                    return True
            for x, y in ((a, b), (b, a)):
                for name in x.get("required") or []:
                    if y.get("additionalProperties") is False and name not in (y.get("properties") or {}):
                        return True
        return False

    @staticmethod
    def finite_values(schema: dict[str, Any]) -> list[Any] | None:
        """The values `const` and `enum` allow together (both hold when both are given), or None."""
        found = [schema["const"]] if "const" in schema else None
        if isinstance(schema.get("enum"), list):
            listed = {value_key(value) for value in schema["enum"]}
            found = list(schema["enum"]) if found is None else [v for v in found if value_key(v) in listed]
        return found
