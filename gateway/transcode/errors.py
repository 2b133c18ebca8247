"""The one place that renders error bodies, and the mapping of gRPC errors to them.

Every non-2xx answer except 422 is the envelope
`{"success": false, "status": N, "error": {"message", "type", "code", "details"}}`;
422 is `{"detail": [{"loc", "msg", "type"}, ...]}` (CONTRACT.md). Messages that could
carry internals (exception class names, addresses, tracebacks) never reach the client:
they are replaced by a generic message for their status.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

import grpc
import orjson
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from gateway.transcode.exceptions import (
    InvalidJsonError,
    RequestValidationError,
    UnsupportedMediaTypeError,
    ValidationIssue,
)
from gateway.transcode.status_table import (
    DEFAULT_ERROR_CODE_BY_GRPC_CODE,
    error_type_for,
    http_status_for,
)

ERROR_DOMAIN = "execgate"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Sent when rendering an error fails: hand-written, so it cannot fail in turn.
FALLBACK_STATUS = 500
FALLBACK_BODY = (
    b'{"success":false,"status":500,"error":{"message":"Internal server error",'
    b'"type":"InternalServerError","code":null,"details":null}}'
)

_GENERIC_MESSAGES: Mapping[int, str] = {
    400: "Bad request",
    401: "Authentication required",
    403: "Permission denied",
    404: "Not found",
    409: "Conflict",
    415: "Unsupported media type",
    429: "Too many requests; retry later",
    499: "The client closed the request",
    500: "Internal server error",
    501: "Not implemented",
    503: "The backend service is unavailable; retry later",
    504: "The backend did not answer in time",
}
# Codes whose message may come from the gRPC runtime rather than the service (connection
# errors name addresses; grpc.aio sends "Unexpected <class ...>" for unhandled exceptions).
_RUNTIME_CODES = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
# What a message that may carry internals contains: literal text (found with `in`)
# and patterns, each checked only when a literal it needs is in the message. One
# regex with all the alternatives took ~19 µs per message (every alternative is
# tried at every position); this takes 0.5 to 2 µs on the error path of every 4xx.
_INTERNAL_TEXTS: Final = (
    "Unexpected <",
    "<class ",
    "<module ",
    "Traceback",
    'File "',
    "[::",
    "sqlite",
    "psycopg",
    "asyncpg",
)
_INTERNAL_PATTERNS: Final = (
    (("Error",), re.compile(r"\b[A-Z]\w*Error\b")),
    (("Exception",), re.compile(r"\b[A-Z]\w*Exception\b")),
    ((":",), re.compile(r"\b(?:ipv4|ipv6|unix|dns):|\w:\d{2,5}\b")),
    ((".",), re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")),
    (("/",), re.compile(r"(?:^|[\s'\"(])/\w+/")),
    (("SELECT", "INSERT", "UPDATE", "DELETE"), re.compile(r"\b(?:SELECT|INSERT|UPDATE|DELETE)\b")),
)
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_MESSAGE = 1000


@dataclass(frozen=True, slots=True)
class ApiError:
    """What an error envelope says; `details` must be JSON-serialisable."""

    status: int
    message: str
    code: str | None = None
    details: Mapping[str, object] | None = None


class RenderedError(NamedTuple):
    status: int
    body: bytes


def generic_message(status: int) -> str:
    return _GENERIC_MESSAGES.get(status, "Bad request" if status < 500 else "Internal server error")


def render_error(error: ApiError) -> RenderedError:
    """The envelope for `error`; the hard-coded 500 body if it cannot be rendered."""
    try:
        body = orjson.dumps(
            {
                "success": False,
                "status": error.status,
                "error": {
                    "message": error.message,
                    "type": error_type_for(error.status),
                    "code": error.code,
                    "details": error.details,
                },
            }
        )
    except (TypeError, orjson.JSONEncodeError):
        return RenderedError(FALLBACK_STATUS, FALLBACK_BODY)
    return RenderedError(error.status, body)


def render_validation_error(issues: Sequence[ValidationIssue]) -> RenderedError:
    """The 422 `HTTPValidationError` body."""
    try:
        body = orjson.dumps(
            {"detail": [{"loc": list(i.loc), "msg": i.msg, "type": i.type} for i in issues]}
        )
    except (TypeError, orjson.JSONEncodeError):
        return RenderedError(FALLBACK_STATUS, FALLBACK_BODY)
    return RenderedError(422, body)


def render_exception(error: BaseException) -> RenderedError:
    """The body for any exception raised while serving a request.

    The transcoder's own exceptions get their status; anything else is a 500 with a
    generic message (the caller logs the cause with the request id).
    """
    if isinstance(error, RequestValidationError):
        return render_validation_error(error.errors)
    if isinstance(error, InvalidJsonError):
        return render_error(
            ApiError(400, f"Request body is not valid JSON: {error}", "invalid_json")
        )
    if isinstance(error, UnsupportedMediaTypeError):
        return render_error(
            ApiError(
                415,
                "Request bodies must be JSON (Content-Type: application/json)",
                "unsupported_media_type",
                {"content_type": error.content_type[:100]},
            )
        )
    return render_error(ApiError(500, generic_message(500)))


def _looks_internal(message: str) -> bool:
    # Plain loops: generator expressions cost more than the checks here.
    for text in _INTERNAL_TEXTS:
        if text in message:
            return True
    for needed, pattern in _INTERNAL_PATTERNS:
        for text in needed:
            if text in message:
                if pattern.search(message):
                    return True
                break
    return False


def _error_info(
    trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
) -> error_details_pb2.ErrorInfo | None:
    """The first ErrorInfo of `grpc-status-details-bin`, if any decodes."""
    for key, value in trailing_metadata or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info
        except DecodeError:
            return None
    return None


def from_grpc_error(
    code: grpc.StatusCode,
    message: str,
    trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
) -> ApiError:
    """The error a gRPC failure becomes: status by the one table, `code` and `details` from
    the `google.rpc.ErrorInfo` in `grpc-status-details-bin` (reason lower-cased, metadata),
    and the message unless it may carry internals."""
    status = http_status_for(code)
    info = _error_info(trailing_metadata)
    from_service = info is not None and info.domain == ERROR_DOMAIN
    error_code = DEFAULT_ERROR_CODE_BY_GRPC_CODE.get(code)
    details: dict[str, object] | None = None
    if info is not None:
        reason = info.reason.lower()
        if _CODE.fullmatch(reason):
            error_code = reason
        details = dict(info.metadata) or None
    if not message or (code in _RUNTIME_CODES and not from_service) or _looks_internal(message):
        message = generic_message(status)
    return ApiError(status, message[:_MAX_MESSAGE], error_code, details)
