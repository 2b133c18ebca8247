"""The one gRPC code -> HTTP status table (CONTRACT.md, as grpc-gateway's runtime/errors.go)
and the one HTTP status -> error `type` vocabulary of the error envelope."""

from __future__ import annotations

from types import MappingProxyType

import grpc

_G = grpc.StatusCode

HTTP_STATUS_BY_GRPC_CODE: MappingProxyType[grpc.StatusCode, int] = MappingProxyType(
    {
        _G.OK: 200,
        _G.CANCELLED: 499,
        _G.UNKNOWN: 500,
        _G.INVALID_ARGUMENT: 400,
        _G.DEADLINE_EXCEEDED: 504,
        _G.NOT_FOUND: 404,
        _G.ALREADY_EXISTS: 409,
        _G.PERMISSION_DENIED: 403,
        _G.UNAUTHENTICATED: 401,
        _G.RESOURCE_EXHAUSTED: 429,
        _G.FAILED_PRECONDITION: 400,
        _G.ABORTED: 409,
        _G.OUT_OF_RANGE: 400,
        _G.UNIMPLEMENTED: 501,
        _G.INTERNAL: 500,
        _G.UNAVAILABLE: 503,
        _G.DATA_LOSS: 500,
    }
)

# CONTRACT.md's vocabulary, plus statuses the gateway itself produces:
# 415 (body with a non-JSON content type), 499 (client closed the request, nginx's code,
# used by grpc-gateway for CANCELLED), 408/414/431 (HTTP server limits), 422 (validation;
# its body is HTTPValidationError, the type appears only in logs).
ERROR_TYPE_BY_HTTP_STATUS: MappingProxyType[int, str] = MappingProxyType(
    {
        400: "BadRequestError",
        401: "UnauthorizedError",
        403: "ForbiddenError",
        404: "NotFoundError",
        405: "MethodNotAllowedError",
        408: "RequestTimeoutError",
        409: "AlreadyExistsError",
        413: "PayloadTooLargeError",
        414: "URITooLongError",
        415: "UnsupportedMediaTypeError",
        422: "ValidationError",
        429: "TooManyRequestsError",
        431: "RequestHeaderFieldsTooLargeError",
        499: "ClientClosedRequestError",
        500: "InternalServerError",
        501: "NotImplementedError",
        503: "ServiceUnavailableError",
        504: "GatewayTimeoutError",
    }
)

# `code` when the backend sent no ErrorInfo: only where the contract names one.
DEFAULT_ERROR_CODE_BY_GRPC_CODE: MappingProxyType[grpc.StatusCode, str] = MappingProxyType(
    {
        _G.DEADLINE_EXCEEDED: "deadline_exceeded",
        _G.UNAVAILABLE: "backend_unavailable",
    }
)


def http_status_for(code: grpc.StatusCode) -> int:
    """HTTP status of a gRPC status code; 500 for anything not in the table."""
    return HTTP_STATUS_BY_GRPC_CODE.get(code, 500)


def error_type_for(http_status: int) -> str:
    """The envelope's `type` for an HTTP status; other 4xx -> BadRequestError, else 500's."""
    error_type = ERROR_TYPE_BY_HTTP_STATUS.get(http_status)
    if error_type is not None:
        return error_type
    return "BadRequestError" if 400 <= http_status < 500 else "InternalServerError"
