"""JSON-schema validators for the contract's components (the repo copy of the OpenAPI file)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CONTRACT = Path(__file__).resolve().parents[1] / "contract" / "get-execution.openapi.yaml"
_URI = "urn:execgate:contract"


@functools.cache
def _registry() -> Registry[Any]:
    document = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_URI, resource)
    return registry


@functools.cache
def validator(schema_name: str) -> Any:
    """A validator of `#/components/schemas/<schema_name>`."""
    return Draft202012Validator(
        {"$ref": f"{_URI}#/components/schemas/{schema_name}"}, registry=_registry()
    )


def schema_errors(schema_name: str, instance: object) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator(schema_name).iter_errors(instance)
    ]
