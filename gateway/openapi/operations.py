"""One OpenAPI operation per REST binding of an RPC: parameters, request body, responses."""

from __future__ import annotations

import re
from collections.abc import Mapping

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.openapi.error_schemas import ERROR_RESPONSE, ERROR_STATUSES, HTTP_VALIDATION_ERROR
from gateway.openapi.paths import multi_segment_patterns
from gateway.openapi.schemas import Schema, SchemaRegistry, field_examples
from gateway.openapi.streams import stream_parameters, stream_response
from gateway.routing.annotations import Route
from gateway.transcode.descriptor_info import is_required_input
from gateway.transcode.request_mapper import compile_request_mapper

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
            "Deadline of the upstream call in ASCII decimal seconds (`2`, `0.25`; at most "
            "3 decimals, at least 0.05), clamped to the gateway's maximum; the gateway's "
            "default applies when absent. Anything else is a 400."
        ),
        "schema": {"type": "string", "pattern": r"^[0-9]{1,6}(\.[0-9]{1,3})?$"},
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
    # draft-ietf-httpapi-ratelimit-headers-08, as the service sends them on a 429.
    "RateLimit": {
        "description": (
            "The API key's rate limit state (draft-ietf-httpapi-ratelimit-headers-08): "
            "the policy name, `r` requests remaining and `t` seconds until the quota "
            'resets, e.g. `"default";r=0;t=3`.'
        ),
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": (
            "The API key's rate limit policy (draft-ietf-httpapi-ratelimit-headers-08): "
            "the policy name, a quota of `q` requests per window of `w` seconds, e.g. "
            '`"default";q=20;w=2`.'
        ),
        "schema": {"type": "string"},
    },
    "Allow": {
        "description": "The methods the path accepts.",
        "schema": {"type": "string"},
    },
}


def _header_refs(names: tuple[str, ...]) -> dict[str, Schema]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def error_response_name(status: int) -> str:
    """components.responses key of an error status: `NotFound`, `ValidationError`, ..."""
    return ERROR_STATUSES[status].phrase.replace(" ", "")


def error_responses() -> dict[str, Schema]:
    """components.responses: one per error status, with its body schema, headers and one
    example per error-table entry (so Swagger shows each status's own bodies)."""
    responses: dict[str, Schema] = {}
    for status, documented in ERROR_STATUSES.items():
        body = HTTP_VALIDATION_ERROR if status == 422 else ERROR_RESPONSE
        responses[error_response_name(status)] = {
            "description": documented.description,
            "headers": _header_refs(("X-Request-Id", *documented.headers)),
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{body}"},
                    "examples": documented.examples(),
                }
            },
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


def _leaf(message: Descriptor, dotted: str) -> FieldDescriptor:
    """The field a dotted query name (`filters.created_after`) sets."""
    names = dotted.split(".")
    for name in names[:-1]:
        nested = message.fields_by_name[name].message_type
        assert nested is not None, f"{dotted}: {name} is not a message"
        message = nested
    return message.fields_by_name[names[-1]]


def _query_parameters(
    route: Route, registry: SchemaRegistry, comments: Mapping[str, str]
) -> list[Schema]:
    """The query parameters the gateway's request mapper accepts for this route, no more.

    The mapper decides (fields the path and body leave unbound; scalars, enums and
    single-value well-known types; nested messages flattened as `a.b`, to its depth
    limit), so the document lists exactly the names that do not answer 422.
    """
    mapper = compile_request_mapper(
        route.request, [path_field.name for path_field in route.path_fields], route.body
    )
    parameters: list[Schema] = []
    for name in mapper.query_parameters:
        field = _leaf(route.request, name)
        schema = registry.value(field)
        parameter: Schema = {
            "name": name,
            "in": "query",
            # As the mapper: only a top-level REQUIRED input field must be in the query.
            "required": "." not in name and is_required_input(field),
            "schema": {"type": "array", "items": schema} if field.is_repeated else schema,
        }
        description = comments.get(field.full_name)
        if description:
            parameter["description"] = description
        if field.GetOptions().deprecated:
            parameter["deprecated"] = True
        parameters.append(parameter)
    by_name = {parameter["name"]: parameter for parameter in parameters}
    for alias, name in mapper.query_aliases.items():
        parameters.append(
            {
                "name": alias,
                "in": "query",
                "required": False,
                "schema": by_name[name]["schema"],
                "description": f"Another name of `{name}`; given both, they must agree.",
            }
        )
    for page, (offset, size) in mapper.page_parameters.items():
        parameters.append(
            {
                "name": page,
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1},
                "description": f"1-based page number: `{offset}` = ({page} - 1) x `{size}`.",
            }
        )
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
        examples = field_examples(route.body_field)
        if examples:  # Swagger UI's "Try it out" body; its own guess may match nothing
            media: Schema = {"schema": schema, "example": examples[0]}
            return {"required": required, "content": {"application/json": media}}
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
    parameters = _path_parameters(route, registry, comments)
    parameters += _query_parameters(route, registry, comments)
    is_get = route.http_method == "GET"
    conditional = is_get and not route.streaming  # a stream has no ETag
    common = ["RequestId", "RequestTimeout", *(["IfNoneMatch"] if conditional else [])]
    parameters += [{"$ref": f"#/components/parameters/{name}"} for name in common]

    cache_headers = _header_refs(("X-Request-Id", "ETag", "Cache-Control"))
    responses: dict[str, Schema]
    if route.streaming:
        parameters += stream_parameters(route)
        responses = {"200": stream_response(route, _success_schema(route, registry))}
    else:
        responses = {
            "200": {
                "description": "Successful Response",
                "headers": cache_headers,
                "content": {"application/json": {"schema": _success_schema(route, registry)}},
            }
        }
    if conditional:
        responses["304"] = {
            "description": "Not Modified: `If-None-Match` matched the current `ETag`.",
            "headers": cache_headers,
        }
    request_body = _request_body(route, registry)
    for status, documented in ERROR_STATUSES.items():
        if documented.needs_body and request_body is None:
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
