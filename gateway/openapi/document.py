"""The gateway's OpenAPI 3.1 document, generated from the descriptors it routes with."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from gateway.openapi.comments import load_comments
from gateway.openapi.error_schemas import ERROR_SCHEMAS
from gateway.openapi.operations import (
    COMMON_HEADERS,
    COMMON_PARAMETERS,
    build_operation,
    error_responses,
)
from gateway.openapi.paths import openapi_path
from gateway.openapi.schemas import SchemaRegistry
from gateway.routing.annotations import Route, routes_from_services

OPENAPI_VERSION = "3.1.0"
_OPENAPI_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The API key: `Authorization: Bearer <api key>`.",
    },
    "Namespace": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Namespace",
        "description": (
            "The namespace ID (`ns_…`) or name. A key scoped to exactly one namespace may "
            "omit it; otherwise a missing namespace is a 400 `namespace_required`."
        ),
    },
}
# Either the key and a namespace, or a single-namespace key alone.
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": [], "Namespace": []}, {"ApiKey": []}]


def build_openapi(
    services: Sequence[ServiceDescriptor],
    descriptor_set_path: Path | None,
    title: str,
    version: str,
    description: str | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every `google.api.http` route of `services`.

    The routes are read as the gateway reads them (`routes_from_services`); see
    `build_openapi_for_routes`. Raises `RouteConfigError` for a bad rule.
    """
    return build_openapi_for_routes(
        routes_from_services(services), descriptor_set_path, title, version, description
    )


def build_openapi_for_routes(
    routes: Sequence[Route],
    descriptor_set_path: Path | None,
    title: str,
    version: str,
    description: str | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway's routes (e.g. `RouteTable.routes`).

    Built from the very routes the gateway serves, so it cannot drift from them.
    `descriptor_set_path` is a FileDescriptorSet with source info (e.g.
    `gen/execgate/descriptor_set.binpb`): its comments become descriptions; without it
    the document is the same minus descriptions. Server-streaming routes answer SSE
    and NDJSON (`streams`); `custom` rules of kind `*` are left out (OpenAPI cannot
    express them per method). Raises
    ValueError when two rules of one HTTP method reduce to the same OpenAPI path
    (`/v1/{name=a/*}` and `/v1/{name=b/*}` are both `/v1/{name}`, which OpenAPI forbids).
    """
    comments: Mapping[str, str] = (
        load_comments(descriptor_set_path) if descriptor_set_path is not None else {}
    )
    registry = SchemaRegistry(comments, reserved=frozenset(ERROR_SCHEMAS))
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, str]] = {}
    for route in routes:
        http_method = route.http_method.lower()
        if http_method not in _OPENAPI_METHODS:
            continue  # a `*` custom rule: not expressible per method
        service = route.method.containing_service
        if service.name not in tags:
            tags[service.name] = {"name": service.name}
            if service.full_name in comments:
                tags[service.name]["description"] = comments[service.full_name]
        operation_id = f"{service.name}_{route.method.name}"
        if route.binding_index:
            operation_id += f"_{route.binding_index}"
        item = paths.setdefault(openapi_path(route.template), {})
        if http_method in item:
            raise ValueError(
                f"{route.description}: the OpenAPI path is already bound by "
                f"{item[http_method]['x-grpc-method']}"
            )
        item[http_method] = build_operation(route, operation_id, registry, comments)
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    # A deep copy: callers may edit their document without touching the shared constants.
    return copy.deepcopy(
        {
            "openapi": OPENAPI_VERSION,
            "info": info,
            "tags": list(tags.values()),
            "security": SECURITY,
            "paths": paths,
            "components": {
                "schemas": {**dict(sorted(registry.components.items())), **ERROR_SCHEMAS},
                "responses": error_responses(),
                "parameters": COMMON_PARAMETERS,
                "headers": COMMON_HEADERS,
                "securitySchemes": SECURITY_SCHEMES,
            },
        }
    )
