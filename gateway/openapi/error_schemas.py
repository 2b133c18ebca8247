"""The error bodies every gateway route can answer with, as the REST contract defines them.

These four schemas are the contract's (`ErrorResponse`, `ErrorDetail`, `HTTPValidationError`,
`ValidationError`), not derived from protos: the gateway renders errors itself.
"""

from __future__ import annotations

from typing import Any

ERROR_RESPONSE = "ErrorResponse"
ERROR_DETAIL = "ErrorDetail"
HTTP_VALIDATION_ERROR = "HTTPValidationError"
VALIDATION_ERROR = "ValidationError"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    ERROR_RESPONSE: {
        "type": "object",
        "title": ERROR_RESPONSE,
        "description": "Error response model.",
        "properties": {
            "success": {
                "type": "boolean",
                "title": "Success",
                "description": "Always false for error responses",
                "default": False,
            },
            "status": {
                "type": "integer",
                "title": "Status",
                "description": "HTTP status code for this error",
            },
            "error": {**_ref(ERROR_DETAIL), "description": "Error details payload"},
        },
        "required": ["status", "error"],
        "examples": [
            {
                "success": False,
                "status": 404,
                "error": {
                    "message": "Execution not found",
                    "type": "NotFoundError",
                    "code": "execution_not_found",
                    "details": {"resource": "execution", "id": "exec_abc123def456"},
                },
            }
        ],
    },
    ERROR_DETAIL: {
        "type": "object",
        "title": ERROR_DETAIL,
        "description": "Error detail model.",
        "properties": {
            "message": {
                "type": "string",
                "title": "Message",
                "description": "Human-readable error message",
            },
            "type": {
                "type": "string",
                "title": "Type",
                "description": "Stable error type identifier (machine-readable)",
            },
            "code": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "title": "Code",
                "description": (
                    "Fine-grained error code for programmatic handling (e.g. "
                    "execution_not_found, namespace_required), from the service's "
                    "google.rpc.ErrorInfo reason, lower-cased."
                ),
            },
            "details": {
                "anyOf": [{"type": "object", "additionalProperties": True}, {"type": "null"}],
                "title": "Details",
                "description": (
                    "Structured details that help the caller (e.g. the resource and ID "
                    "that was not found), from the ErrorInfo metadata."
                ),
            },
        },
        "required": ["message", "type"],
    },
    HTTP_VALIDATION_ERROR: {
        "type": "object",
        "title": HTTP_VALIDATION_ERROR,
        "properties": {
            "detail": {
                "type": "array",
                "items": _ref(VALIDATION_ERROR),
                "title": "Detail",
            }
        },
    },
    VALIDATION_ERROR: {
        "type": "object",
        "title": VALIDATION_ERROR,
        "properties": {
            "loc": {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "title": "Location",
                "description": (
                    'Where the value came from, then the field path: ["query", "limit"].'
                ),
            },
            "msg": {"type": "string", "title": "Message"},
            "type": {"type": "string", "title": "Error Type"},
        },
        "required": ["loc", "msg", "type"],
    },
}


# HTTP status -> (reason phrase, when the gateway answers it). One entry per status the
# gateway can produce; the gRPC codes follow the status table in CONTRACT.md.
ERROR_STATUSES: dict[int, tuple[str, str]] = {
    400: (
        "Bad Request",
        "INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE from the service (e.g. "
        "`namespace_required`, `invalid_execution_id`), or a body that is not valid JSON.",
    ),
    401: ("Unauthorized", "UNAUTHENTICATED: `missing_api_key` or `invalid_api_key`."),
    403: ("Forbidden", "PERMISSION_DENIED: the key may not do this."),
    404: (
        "Not Found",
        "NOT_FOUND from the service (e.g. `execution_not_found`; resources of other "
        "namespaces look exactly like missing ones), or `route_not_found`.",
    ),
    405: ("Method Not Allowed", "`method_not_allowed`; the `Allow` header lists the methods."),
    409: ("Conflict", "ALREADY_EXISTS or ABORTED from the service."),
    413: ("Payload Too Large", "The request body is larger than the gateway accepts."),
    415: ("Unsupported Media Type", "A request body that is not `application/json`."),
    422: (
        "Validation Error",
        "A path, query or body value that does not parse, or an unknown name; `loc` says where.",
    ),
    429: ("Too Many Requests", "RESOURCE_EXHAUSTED from the service."),
    500: (
        "Internal Server Error",
        "UNKNOWN, INTERNAL or DATA_LOSS from the service, or an unexpected gateway error "
        "(generic message; the cause is logged with the request ID).",
    ),
    501: ("Not Implemented", "UNIMPLEMENTED from the service."),
    503: (
        "Service Unavailable",
        "`backend_unavailable`: the service cannot be reached (UNAVAILABLE); see `Retry-After`.",
    ),
    504: (
        "Gateway Timeout",
        "`deadline_exceeded`: the call outlived its deadline (DEADLINE_EXCEEDED).",
    ),
}

# Statuses only an operation with a request body can produce.
BODY_ONLY_STATUSES = frozenset({413, 415})
