"""The error bodies every gateway route can answer with, as the REST contract defines them.

These four schemas are the contract's (`ErrorResponse`, `ErrorDetail`, `HTTPValidationError`,
`ValidationError`), not derived from protos: the gateway renders errors itself. The
statuses, their descriptions, headers and examples come from the error table
(`gateway.errors.table`), one example per entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import STATUS_TEXTS, Failure, answer
from gateway.errors.table import FAILURES

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
                "description": (
                    "Stable error type identifier (machine-readable), one per HTTP status: "
                    + ", ".join(
                        f"{status} `{text.type}`"
                        for status, text in STATUS_TEXTS.items()
                        if status != 422  # 422 answers HTTPValidationError
                    )
                    + "."
                ),
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


@dataclass(frozen=True, slots=True)
class ErrorStatus:
    """One documented error status: the table's entries that answer with it."""

    status: int
    failures: tuple[Failure[Any], ...]

    @property
    def phrase(self) -> str:
        return STATUS_TEXTS[self.status].phrase

    @property
    def description(self) -> str:
        whens = "\n".join(f"- {failure.when}" for failure in self.failures)
        return f"{self.phrase}: `{STATUS_TEXTS[self.status].type}`.\n\n{whens}"

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h for failure in self.failures for h in failure.headers))

    @property
    def needs_body(self) -> bool:
        """Only an operation with a request body can answer it."""
        return all(failure.needs_body for failure in self.failures)

    def examples(self) -> dict[str, dict[str, Any]]:
        """Each entry's sample as the gateway answers it: the example is its own body."""
        examples: dict[str, dict[str, Any]] = {}
        for failure in self.failures:
            body = orjson.loads(answer(failure.sample(), 1).rendered.body)
            code = body.get("error", {}).get("code")
            examples[failure.name] = {"summary": code or failure.name, "value": body}
        return examples


def _error_statuses() -> dict[int, ErrorStatus]:
    by_status: dict[int, list[Failure[Any]]] = {}
    for failure in FAILURES:
        by_status.setdefault(failure.status, []).append(failure)
    return {status: ErrorStatus(status, tuple(by_status[status])) for status in sorted(by_status)}


# Every status the error table (gateway.errors) can answer, with its entries.
ERROR_STATUSES: dict[int, ErrorStatus] = _error_statuses()
