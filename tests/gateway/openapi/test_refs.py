"""Every `$ref` of a generated document points at something in it.

openapi_spec_validator does not resolve local references, so a component named in a
`$ref` but never defined (a response header, a schema) would go unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def _refs(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    """(location, target) of every `$ref` under `node`, depth first."""
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str):
            yield where, target
        for key, value in node.items():
            yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{where}/{index}")


def _resolves(document: dict[str, Any], target: str) -> bool:
    if not target.startswith("#/"):
        return False  # the generator only writes local references
    node: Any = document
    for part in target.removeprefix("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")  # JSON pointer escapes
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


@pytest.mark.parametrize("fixture", ["execution_document", "library_document"])
def test_every_ref_resolves(fixture: str, request: pytest.FixtureRequest) -> None:
    document: dict[str, Any] = request.getfixturevalue(fixture)
    refs = list(_refs(document))
    assert refs, "the walk found no $ref at all"
    dangling = [(where, target) for where, target in refs if not _resolves(document, target)]
    assert dangling == []


def test_the_walk_reports_a_dangling_ref() -> None:
    document = {
        "components": {"headers": {"A": {}}},
        "x": [{"$ref": "#/components/headers/A"}, {"$ref": "#/components/headers/B"}],
    }
    assert [t for _, t in _refs(document) if not _resolves(document, t)] == [
        "#/components/headers/B"
    ]
