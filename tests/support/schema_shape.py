"""Compare JSON Schemas by what they accept: properties, types, required lists, nullability.

`shape()` reduces a schema (following `$ref`s within its document) to a comparable value
that keeps exactly those facts; annotations (title, description, examples, default) and
refinements the contract and the protos express differently (enum lists, numeric bounds,
number formats) are left out and checked separately.
"""

from __future__ import annotations

from typing import Any

_ANNOTATIONS = frozenset(
    {"title", "description", "examples", "default", "deprecated", "readOnly", "writeOnly"}
)
# Refinements left out of the shape; the tests list each one that differs.
REFINEMENTS = frozenset({"enum", "minimum", "maximum", "exclusiveMinimum", "pattern", "format"})


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with a top-level `$ref` replaced by its (merged) target."""
    while "$ref" in schema:
        pointer = schema["$ref"].removeprefix("#/").split("/")
        target: Any = document
        for part in pointer:
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def shape(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    schema = resolve(document, schema)
    if "anyOf" in schema:
        return ("anyOf", frozenset(shape(document, option) for option in schema["anyOf"]))
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        return (
            "object",
            tuple(sorted((name, shape(document, sub)) for name, sub in properties.items())),
            tuple(sorted(schema.get("required", []))),
            extra if isinstance(extra, bool) else shape(document, extra),
        )
    if kind == "array":
        return ("array", shape(document, schema.get("items", {})))
    if kind == "string":
        # date-time is part of what a string field is; other formats are refinements.
        return ("string", schema.get("format") if schema.get("format") == "date-time" else None)
    unknown = set(schema) - _ANNOTATIONS - REFINEMENTS - {"type"}
    assert not unknown, f"schema keywords this comparison does not understand: {unknown}"
    return kind


def refinements(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The refinement keywords of a property schema (inside anyOf too), by keyword."""
    schema = resolve(document, schema)
    found = {k: v for k, v in schema.items() if k in REFINEMENTS}
    for option in schema.get("anyOf", []):
        found.update(refinements(document, option))
    return found
