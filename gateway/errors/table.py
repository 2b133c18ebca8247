"""THE error table: every way a request can fail, in the order the answer is looked up.

The first entry whose `cause` (and `applies`) matches the exception answers it, so a
narrower entry comes before a broader one of the same class; the last entry answers any
other exception with a generic 500. To add a failure, add one `Failure` here: the
middleware answers it, the OpenAPI document lists its status, headers and example (its
`sample`, rendered), and the tests in `tests/gateway/errors/` check it.
"""

from __future__ import annotations

from typing import Any, Final

import grpc
from aiohttp import web
from aiohttp.http_exceptions import BadStatusLine, HttpProcessingError, LineTooLong

from gateway.errors.grpc_status import (
    has_code,
    has_reason,
    response_too_large,
    rpc_error,
    service_error,
)
from gateway.errors.grpc_status import service_specifics as from_service
from gateway.errors.model import Failure, Specifics
from gateway.errors.overload import (
    ClientThrottledError,
    ConnectionLimitError,
    OverloadedError,
    RequestTimeoutError,
)
from gateway.errors.request_refusals import ExpectationFailedError, MethodNotImplementedError
from gateway.errors.vocabulary import generic_message
from gateway.routing import BadPathError, MethodNotAllowedError, RouteNotFoundError
from gateway.stream_limits import TooManyStreamsError
from gateway.transcode.exceptions import (
    InvalidJsonError,
    RenderError,
    RequestValidationError,
    UnsupportedMediaTypeError,
    ValidationIssue,
)
from gateway.upstream import InvalidRequestHeaderError

_G = grpc.StatusCode
_RPC = grpc.aio.AioRpcError


def _is_url_line(error: LineTooLong) -> bool:
    # aiohttp raises the same class for the URL and for a header; its first argument
    # is the start of the offending text, and only a request target starts so.
    start = error.args[0] if error.args else b""
    if isinstance(start, str):
        start = start.encode("latin-1", "replace")
    if not isinstance(start, (bytes, bytearray, memoryview)):
        return False
    return bytes(start).startswith((b"/", b"http://", b"https://", b"*"))


def _too_many_headers(error: HttpProcessingError) -> bool:
    return "too many headers" in str(error.message).lower()


def _method_not_allowed(error: MethodNotAllowedError) -> Specifics:
    return Specifics(
        details={"allowed": list(error.allowed_methods)},
        headers={"Allow": ", ".join(error.allowed_methods)},
    )


def _grpc(
    code: grpc.StatusCode,
    status: int,
    when: str,
    sample: _RPC,
    *,
    error_code: str | None = None,
    headers: tuple[str, ...] = (),
    retry_after: bool = False,
) -> Failure[_RPC]:
    """The entry of a gRPC status code (CONTRACT.md's table, as grpc-gateway's errors.go):
    message, `code` and `details` from the service's ErrorInfo, `error_code` if none."""
    return Failure(
        name=f"grpc_{code.name.lower()}",
        cause=_RPC,
        applies=has_code(code),
        status=status,
        code=error_code,
        message=generic_message(status),
        when=f"{code.name} from the service. {when}".strip(),
        headers=headers,
        retry_after=retry_after,
        specifics=from_service,
        sample=lambda: sample,
    )


FAILURES: Final[tuple[Failure[Any], ...]] = (
    # gRPC failures from the upstream call: first, the most frequent error path (a 404
    # from the service); no other entry's cause is a gRPC error.
    Failure(
        name="response_too_large",
        cause=_RPC,
        applies=response_too_large,
        status=502,
        code="response_too_large",
        message=(
            "The answer is larger than the gateway can relay; ask for less "
            "(e.g. without optional parts or with a smaller page)."
        ),
        when=(
            "`response_too_large`: the service's answer exceeds the gRPC message size limit "
            "(RESOURCE_EXHAUSTED from that limit, not from a quota). Retrying will not help."
        ),
        sample=lambda: rpc_error(
            _G.RESOURCE_EXHAUSTED, "SERVER: Sent message larger than max (20000000 vs. 16777216)"
        ),
    ),
    Failure(
        name="service_overloaded",
        cause=_RPC,
        applies=has_reason(_G.RESOURCE_EXHAUSTED, "OVERLOADED"),
        status=503,
        code="overloaded",
        message="The service is at its bound of calls in flight; retry later.",
        when=(
            "`overloaded`: the service sheds the call (RESOURCE_EXHAUSTED, reason `OVERLOADED`): "
            "server overload, not the caller's quota; see `Retry-After`."
        ),
        headers=("Retry-After",),
        retry_after=True,
        specifics=from_service,
        sample=lambda: service_error(
            _G.RESOURCE_EXHAUSTED, "The service is overloaded; retry later", "OVERLOADED"
        ),
    ),
    _grpc(
        _G.CANCELLED,
        499,
        "The call was cancelled; normally the client has gone.",
        rpc_error(_G.CANCELLED, "Cancelled"),
    ),
    _grpc(
        _G.UNKNOWN,
        500,
        "Generic message; the cause is logged with the request ID.",
        rpc_error(_G.UNKNOWN, "Unexpected <class 'RuntimeError'>"),
    ),
    _grpc(
        _G.INVALID_ARGUMENT,
        400,
        "E.g. `namespace_required`, `invalid_execution_id`.",
        service_error(
            _G.INVALID_ARGUMENT,
            "X-Namespace is required: this key can see several namespaces",
            "NAMESPACE_REQUIRED",
        ),
    ),
    _grpc(
        _G.DEADLINE_EXCEEDED,
        504,
        "`deadline_exceeded`: the call outlived its deadline.",
        rpc_error(_G.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        error_code="deadline_exceeded",
    ),
    _grpc(
        _G.NOT_FOUND,
        404,
        "E.g. `execution_not_found`; resources of other namespaces look exactly like missing ones.",
        service_error(
            _G.NOT_FOUND,
            "Execution not found",
            "EXECUTION_NOT_FOUND",
            {"resource": "execution", "id": "exec_abc123def456"},
        ),
    ),
    _grpc(
        _G.ALREADY_EXISTS,
        409,
        "",
        service_error(
            _G.ALREADY_EXISTS,
            "Execution already exists",
            "EXECUTION_EXISTS",
            {"resource": "execution", "id": "exec_abc123def456"},
        ),
    ),
    _grpc(
        _G.PERMISSION_DENIED,
        403,
        "The key may not do this.",
        service_error(_G.PERMISSION_DENIED, "This key may not write", "PERMISSION_DENIED"),
    ),
    _grpc(
        _G.UNAUTHENTICATED,
        401,
        "`missing_api_key` or `invalid_api_key`.",
        service_error(_G.UNAUTHENTICATED, "Invalid API key", "INVALID_API_KEY"),
    ),
    _grpc(
        _G.RESOURCE_EXHAUSTED,
        429,
        "`rate_limited`: the API key's rate limit; `Retry-After`, and `RateLimit` and "
        "`RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-08) say when and how much.",
        service_error(_G.RESOURCE_EXHAUSTED, "Too many requests; retry later", "RATE_LIMITED"),
        headers=("Retry-After", "RateLimit", "RateLimit-Policy"),
    ),
    _grpc(
        _G.FAILED_PRECONDITION,
        400,
        "",
        service_error(
            _G.FAILED_PRECONDITION, "The execution is already complete", "EXECUTION_FINISHED"
        ),
    ),
    _grpc(
        _G.ABORTED,
        409,
        "",
        service_error(_G.ABORTED, "A concurrent update won; retry", "CONCURRENT_UPDATE"),
    ),
    _grpc(
        _G.OUT_OF_RANGE,
        400,
        "",
        service_error(_G.OUT_OF_RANGE, "offset is past the end", "OFFSET_OUT_OF_RANGE"),
    ),
    _grpc(
        _G.UNIMPLEMENTED,
        501,
        "",
        rpc_error(_G.UNIMPLEMENTED, "Method not found!"),
    ),
    _grpc(
        _G.INTERNAL,
        500,
        "Generic message; the cause is logged with the request ID.",
        rpc_error(_G.INTERNAL, "Unexpected <class 'sqlite3.OperationalError'>"),
    ),
    _grpc(
        _G.UNAVAILABLE,
        503,
        "`backend_unavailable`: the service cannot be reached; see `Retry-After`.",
        rpc_error(_G.UNAVAILABLE, "failed to connect to all addresses"),
        error_code="backend_unavailable",
        headers=("Retry-After",),
        retry_after=True,
    ),
    _grpc(
        _G.DATA_LOSS,
        500,
        "Generic message; the cause is logged with the request ID.",
        rpc_error(_G.DATA_LOSS, "Data loss"),
    ),
    # The connection and the load, before any route (gateway/connection_guard.py,
    # gateway/load_shedding.py).
    Failure(
        name="too_many_connections",
        cause=ConnectionLimitError,
        status=503,
        code="too_many_connections",
        message="Too many connections; retry later.",
        when=(
            "`too_many_connections`: a connection over the gateway's cap, in all or from one "
            "client address; the connection closes."
        ),
        headers=("Retry-After",),
        retry_after=True,
        sample=lambda: ConnectionLimitError("client", 256),
    ),
    Failure(
        name="overloaded",
        cause=OverloadedError,
        status=503,
        code="overloaded",
        message="The gateway is at its bound of requests in flight; retry later.",
        when="`overloaded`: more requests in flight than the gateway's bound; see `Retry-After`.",
        headers=("Retry-After",),
        retry_after=True,
        sample=lambda: OverloadedError(256),
    ),
    Failure(
        name="request_timeout",
        cause=RequestTimeoutError,
        status=408,
        code="request_timeout",
        message="The request did not arrive in time.",
        when=(
            "`request_timeout`: the request head or body arrived more slowly than the gateway's "
            "header or body timeout; the connection closes."
        ),
        specifics=lambda error: Specifics(
            message=f"The request {error.part} did not arrive within {error.seconds:g} s."
        ),
        sample=lambda: RequestTimeoutError("headers", 10.0),
    ),
    Failure(
        name="client_throttled",
        cause=ClientThrottledError,
        status=429,
        code="too_many_failed_authentications",
        message="Too many failed authentications from this address; retry later.",
        when=(
            "`too_many_failed_authentications`: the client address has had too many 401 "
            "answers; refused without a lookup until `Retry-After`."
        ),
        headers=("Retry-After",),
        retry_after=True,  # the throttle's own wait wins over the configured one
        specifics=lambda error: Specifics(headers={"Retry-After": str(error.retry_after_s)}),
        sample=lambda: ClientThrottledError(3),
    ),
    # The request itself, before any route.
    Failure(
        name="method_not_implemented",
        cause=MethodNotImplementedError,
        status=501,
        code="method_not_implemented",
        message="The gateway does not implement this method.",
        when="`method_not_implemented`: a method no route can serve, such as `CONNECT`.",
        sample=lambda: MethodNotImplementedError("CONNECT"),
    ),
    Failure(
        name="expectation_failed",
        cause=ExpectationFailedError,
        status=417,
        code="expectation_failed",
        message="Only the expectation 100-continue is supported.",
        when="`expectation_failed`: an `Expect` header other than `100-continue`.",
        sample=ExpectationFailedError,
    ),
    # Routing.
    Failure(
        name="route_not_found",
        cause=RouteNotFoundError,
        status=404,
        code="route_not_found",
        message="No route matches this path.",
        when="`route_not_found`: no route matches the path.",
        sample=RouteNotFoundError,
    ),
    Failure(
        name="request_target_not_found",
        cause=web.HTTPNotFound,
        status=404,
        code="route_not_found",
        message="No route matches this path.",
        when="`route_not_found`: a request target that is not a path (e.g. `*`).",
        sample=web.HTTPNotFound,
    ),
    Failure(
        name="method_not_allowed",
        cause=MethodNotAllowedError,
        status=405,
        code="method_not_allowed",
        message="This path does not accept this method.",
        when="`method_not_allowed`: the path exists for other methods; `Allow` lists them.",
        headers=("Allow",),
        specifics=_method_not_allowed,
        sample=lambda: MethodNotAllowedError({"POST"}),
    ),
    Failure(
        name="invalid_path",
        cause=BadPathError,
        status=400,
        code="invalid_path",
        message="The request path is not valid.",
        when="`invalid_path`: an unsafe or malformed path (NUL, `..`, bad percent-encoding).",
        specifics=lambda error: Specifics(message=error.reason),
        sample=lambda: BadPathError("Empty path segment"),
    ),
    Failure(
        name="invalid_header",
        cause=InvalidRequestHeaderError,
        status=400,
        code="invalid_header",
        message="A request header has an unusable value.",
        when="`invalid_header`: a header the gateway reads has an unusable value.",
        specifics=lambda error: Specifics(message=error.message, details={"header": error.header}),
        sample=lambda: InvalidRequestHeaderError(
            "x-request-timeout", "X-Request-Timeout must be a positive number of seconds"
        ),
    ),
    Failure(
        name="too_many_streams",
        cause=TooManyStreamsError,
        status=429,
        code="too_many_streams",
        message="This API key has as many streams open as allowed; close one first.",
        when=(
            "`too_many_streams`: a streaming route, while the API key already holds the "
            "gateway's maximum of open streams (`--max-streams-per-key`)."
        ),
        headers=("Retry-After",),
        retry_after=True,
        specifics=lambda error: Specifics(details={"limit": error.limit}),
        sample=lambda: TooManyStreamsError(100),
    ),
    # The request body and parameters.
    Failure(
        name="invalid_json",
        cause=InvalidJsonError,
        status=400,
        code="invalid_json",
        message="Request body is not valid JSON.",
        when="`invalid_json`: a request body that is not valid JSON.",
        needs_body=True,
        specifics=lambda error: Specifics(message=f"Request body is not valid JSON: {error}"),
        sample=lambda: InvalidJsonError("unexpected character: line 1 column 2 (char 1)"),
    ),
    Failure(
        name="unsupported_media_type",
        cause=UnsupportedMediaTypeError,
        status=415,
        code="unsupported_media_type",
        message="Request bodies must be JSON (Content-Type: application/json)",
        when="`unsupported_media_type`: a request body that is not `application/json`.",
        needs_body=True,
        specifics=lambda error: Specifics(details={"content_type": error.content_type[:100]}),
        sample=lambda: UnsupportedMediaTypeError("application/x-www-form-urlencoded"),
    ),
    Failure(
        name="payload_too_large",
        cause=web.HTTPRequestEntityTooLarge,
        status=413,
        code="payload_too_large",
        message="The request body is larger than allowed.",
        when="`payload_too_large`: a request body over the gateway's limit.",
        needs_body=True,
        sample=lambda: web.HTTPRequestEntityTooLarge(max_size=1024, actual_size=2048),
    ),
    Failure(
        name="validation_error",
        cause=RequestValidationError,
        status=422,
        code=None,
        message="Validation error",
        when=(
            "A path, query or body value that does not parse, or an unknown name; `loc` says where."
        ),
        issues=lambda error: error.errors,
        sample=lambda: RequestValidationError(
            [ValidationIssue(("query", "limit"), "Input should be a valid integer", "int_parsing")]
        ),
    ),
    # Requests aiohttp's HTTP parser refuses before any handler (see app.GatewayRunner);
    # the parser's own message echoes request bytes, so it is never sent.
    Failure(
        name="uri_too_long",
        cause=LineTooLong,
        applies=_is_url_line,
        status=414,
        code="uri_too_long",
        message="The request URL is longer than allowed.",
        when="`uri_too_long`: a request line over the gateway's `max_line_size`.",
        sample=lambda: LineTooLong(b"/v1/" + b"x" * 16, 8190),
    ),
    Failure(
        name="header_too_large",
        cause=LineTooLong,
        status=431,
        code="header_too_large",
        message="A request header is longer than allowed.",
        when="`header_too_large`: a header over the gateway's `max_field_size`.",
        sample=lambda: LineTooLong(b"X-Big: " + b"x" * 16, 8190),
    ),
    Failure(
        name="too_many_headers",
        cause=HttpProcessingError,
        applies=_too_many_headers,
        status=431,
        code="too_many_headers",
        message="The request has more headers than allowed.",
        when="`too_many_headers`: more headers than the gateway's `max_headers`.",
        sample=lambda: HttpProcessingError(message="Too many headers received"),
    ),
    Failure(
        name="malformed_request",
        cause=HttpProcessingError,
        status=400,
        code="malformed_request",
        message="The request is not valid HTTP/1.1.",
        when="`malformed_request`: the request is not valid HTTP/1.1 (or its method is unknown).",
        sample=lambda: BadStatusLine("garbage"),
    ),
    # Other refusals of aiohttp's server keep their own status.
    Failure(
        name="handler_timeout",
        cause=web.HTTPGatewayTimeout,
        status=504,
        code="deadline_exceeded",
        message=generic_message(504),
        when="`deadline_exceeded`: the gateway's handler outlived its time.",
        sample=web.HTTPGatewayTimeout,
    ),
    Failure(
        name="http_refusal",
        cause=web.HTTPException,
        applies=lambda error: error.status >= 400,
        status=400,
        code=None,
        message=generic_message(400),
        when="Any other refusal of the HTTP server (its own status, a generic message).",
        specifics=lambda error: Specifics(
            status=error.status, message=generic_message(error.status)
        ),
        sample=web.HTTPBadRequest,
    ),
    # The gateway's own bugs: a generic 500, the cause logged with the request ID.
    Failure(
        name="unrenderable_response",
        cause=RenderError,
        status=500,
        code=None,
        message=generic_message(500),
        when="A backend answer JSON cannot express (a backend bug).",
        sample=lambda: RenderError("timestamp beyond year 9999"),
    ),
    Failure(
        name="internal",
        cause=Exception,
        status=500,
        code=None,
        message=generic_message(500),
        when="An unexpected gateway error (generic message; the cause is logged).",
        sample=lambda: RuntimeError("unexpected"),
    ),
)
