"""One OpenAPI operation per REST binding of an RPC: parameters, request body, responses."""

from __future__ import annotations

import re
from collections.abc import Mapping

from google.protobuf.descriptor import Descriptor

from gateway.openapi.error_schemas import (
    BODY_ONLY_STATUSES,
    ERROR_RESPONSE,
    ERROR_STATUSES,
    HTTP_VALIDATION_ERROR,
)
from gateway.openapi.paths import multi_segment_patterns
from gateway.openapi.schemas import Schema, SchemaRegistry
from gateway.routing.annotations import Route
from gateway.transcode.descriptor_info import RAW_JSON, SPECIAL_JSON_TYPES, is_map

# Well-known types a query parameter can carry as one string (protojson's text form).
_QUERY_MESSAGE_TYPES = SPECIAL_JSON_TYPES - {
    RAW_JSON,
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Empty",
    "google.protobuf.Any",
}

# Header parameters every operation accepts (components.parameters).
COMMON_PARAMETERS: dict[str, Schema] = {
    "RequestId": {
        "name": "X-Request-Id",
        "in": "header",
        "required": False,
        "description": "Correlates logs; generated when absent and echoed on every response.",
        "schema": {"type": "string"},
    },
    "RequestTimeout": {
        "name": "X-Request-Timeout",
        "in": "header",
        "required": False,
        "description": (
            "Deadline of the upstream call in seconds, clamped to the gateway's maximum; "
            "the gateway's default applies when absent."
        ),
        "schema": {"type": "number", "exclusiveMinimum": 0},
    },
    "IfNoneMatch": {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "An `ETag` from an earlier response; a match answers 304.",
        "schema": {"type": "string"},
    },
}

# Response headers (components.headers).
COMMON_HEADERS: dict[str, Schema] = {
    "X-Request-Id": {
        "description": "The request's ID: the client's `X-Request-Id`, or a generated one.",
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": "Strong validator, set when the service marks the response cacheable.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": (
            "As the service decides: `private` for records that never change (completed "
            "or failed executions), `no-store` otherwise."
        ),
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    },
    "Allow": {
        "description": "The methods the path accepts.",
        "schema": {"type": "string"},
    },
}

_ERROR_EXTRA_HEADERS: dict[int, tuple[str, ...]] = {
    405: ("Allow",),
    429: ("Retry-After",),
    503: ("Retry-After",),
}


def _header_refs(names: tuple[str, ...]) -> dict[str, Schema]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def error_response_name(status: int) -> str:
    """components.responses key of an error status: `NotFound`, `ValidationError`, ..."""
    return ERROR_STATUSES[status][0].replace(" ", "")


def error_responses() -> dict[str, Schema]:
    """components.responses: one per error status, with its body schema and headers."""
    responses: dict[str, Schema] = {}
    for status, (phrase, when) in ERROR_STATUSES.items():
        body = HTTP_VALIDATION_ERROR if status == 422 else ERROR_RESPONSE
        responses[error_response_name(status)] = {
            "description": f"{phrase}: {when}",
            "headers": _header_refs(("X-Request-Id", *_ERROR_EXTRA_HEADERS.get(status, ()))),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return responses


def _words(camel: str) -> str:
    """`GetExecution` -> `Get Execution` (the contract's summary style)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", camel)


def _path_parameters(
    route: Route, registry: SchemaRegistry, comments: Mapping[str, str]
) -> list[Schema]:
    patterns = multi_segment_patterns(route.template)
    parameters: list[Schema] = []
    for path_field in route.path_fields:
        leaf = path_field.fields[-1]
        schema = registry.value(leaf)
        notes = [comments.get(leaf.full_name, "")]
        pattern = patterns.get(path_field.name)
        if pattern is not None:
            schema["pattern"] = pattern
            notes.append("Spans several path segments; its `/` separators are part of the value.")
        parameter: Schema = {
            "name": path_field.name,
            "in": "path",
            "required": True,
            "schema": schema,
        }
        description = " ".join(note for note in notes if note)
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _query_parameters(
    message: Descriptor,
    prefix: tuple[str, ...],
    bound: frozenset[tuple[str, ...]],
    registry: SchemaRegistry,
    comments: Mapping[str, str],
    visiting: frozenset[str],
) -> list[Schema]:
    """Every field the path and body leave unbound, nested messages flattened as `a.b`."""
    parameters: list[Schema] = []
    for field in message.fields:
        path = (*prefix, field.name)
        if path in bound or is_map(field):
            continue
        message_type = field.message_type
        if message_type is not None and message_type.full_name not in _QUERY_MESSAGE_TYPES:
            if field.is_repeated or message_type.full_name in SPECIAL_JSON_TYPES:
                continue  # no query form: a JSON object or a list of them
            if message_type.full_name not in visiting:
                parameters += _query_parameters(
                    message_type,
                    path,
                    bound,
                    registry,
                    comments,
                    visiting | {message.full_name},
                )
            continue
        schema = registry.value(field)
        parameter: Schema = {
            "name": ".".join(path),
            "in": "query",
            "required": registry.is_required(field),
            "schema": {"type": "array", "items": schema} if field.is_repeated else schema,
        }
        description = comments.get(field.full_name)
        if description:
            parameter["description"] = description
        if field.GetOptions().deprecated:
            parameter["deprecated"] = True
        parameters.append(parameter)
    return parameters


def _request_body(route: Route, registry: SchemaRegistry) -> Schema | None:
    if route.body == "*":
        # Path-bound top-level fields are not read from the body.
        fields = [f for f in route.request.fields if f.name not in route.path_field_names]
        if len(fields) == len(route.request.fields):
            schema = registry.message(route.request)
        else:
            schema = registry.object_schema(route.request, fields, f"{route.method.name}Body")
        required = any(registry.is_required(f) for f in fields)
    elif route.body_field is not None:
        schema = registry.shape(route.body_field)
        required = registry.is_required(route.body_field)
    else:
        return None
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _success_schema(route: Route, registry: SchemaRegistry) -> Schema:
    if route.response_body_field is None:
        return registry.message(route.response)
    return registry.shape(route.response_body_field)


def build_operation(
    route: Route, operation_id: str, registry: SchemaRegistry, comments: Mapping[str, str]
) -> Schema:
    """The OpenAPI operation object of one route."""
    method = route.method
    bound = frozenset(tuple(name.split(".")) for name in route.path_field_names)
    if route.body_field is not None:
        bound |= {(route.body_field.name,)}
    parameters = _path_parameters(route, registry, comments)
    if route.body != "*":
        parameters += _query_parameters(route.request, (), bound, registry, comments, frozenset())
    is_get = route.http_method == "GET"
    common = ["RequestId", "RequestTimeout", *(["IfNoneMatch"] if is_get else [])]
    parameters += [{"$ref": f"#/components/parameters/{name}"} for name in common]

    cache_headers = _header_refs(("X-Request-Id", "ETag", "Cache-Control"))
    responses: dict[str, Schema] = {
        "200": {
            "description": "Successful Response",
            "headers": cache_headers,
            "content": {"application/json": {"schema": _success_schema(route, registry)}},
        }
    }
    if is_get:
        responses["304"] = {
            "description": "Not Modified: `If-None-Match` matched the current `ETag`.",
            "headers": cache_headers,
        }
    request_body = _request_body(route, registry)
    for status in ERROR_STATUSES:
        if status in BODY_ONLY_STATUSES and request_body is None:
            continue
        responses[str(status)] = {"$ref": f"#/components/responses/{error_response_name(status)}"}

    operation: Schema = {
        "tags": [method.containing_service.name],
        "summary": _words(method.name),
        "operationId": operation_id,
        "parameters": parameters,
        "responses": responses,
        "x-grpc-method": route.grpc_method,
    }
    description = comments.get(method.full_name)
    if description:
        operation["description"] = description
    if request_body is not None:
        operation["requestBody"] = request_body
    if method.GetOptions().deprecated:
        operation["deprecated"] = True
    return operation
