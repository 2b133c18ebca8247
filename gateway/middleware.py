"""The one middleware: request id, error envelopes, metrics and the access log.

Every request passes through `observe`; every exception a handler raises is
turned into the contract's envelope by `error_response`, the single place that
knows which failure answers which status. A cause the client must not see (an
unexpected exception) is logged with the request id and answered generically.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Mapping
from typing import Final

import grpc
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.typedefs import Handler, Middleware

from gateway.access_log import CLIENT_CLOSED_REQUEST, ERROR_LOGGER, AccessLog, RequestRecord
from gateway.dispatch import JSON_CONTENT_TYPE
from gateway.metrics import GatewayMetrics
from gateway.routing import BadPathError, MethodNotAllowedError, RouteNotFoundError
from gateway.transcode.errors import (
    FALLBACK_BODY,
    FALLBACK_STATUS,
    ApiError,
    RenderedError,
    from_grpc_error,
    generic_message,
    render_error,
    render_exception,
)
from gateway.upstream import InvalidRequestHeaderError, response_headers

REQUEST_ID_HEADER: Final = "X-Request-Id"
REQUEST_RECORD: Final = web.RequestKey("request_record", RequestRecord)
# Name of the catch-all aiohttp route; its handler labels requests with the
# matched google.api.http template, other routes (operations, docs) with their own path.
TRANSCODE_ROUTE: Final = "transcode"
# A client's request id is echoed and forwarded only if it is short and plain.
_CLIENT_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
# gRPC's client-side message for a response over `grpc.max_receive_message_length`.
_RESPONSE_TOO_LARGE: Final = "CLIENT: Received message larger than max"
_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


def request_id_from(client_value: str | None) -> str:
    """The client's X-Request-Id when it is safe to echo and forward, else a new one."""
    if client_value is not None and _CLIENT_REQUEST_ID.fullmatch(client_value):
        return client_value
    return secrets.token_hex(16)


def make_middleware(
    metrics: GatewayMetrics, access_log: AccessLog, retry_after_s: int
) -> Middleware:
    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        method = request.method if request.method in _KNOWN_METHODS else "OTHER"
        record = RequestRecord(
            request_id=request_id_from(request.headers.get(REQUEST_ID_HEADER)),
            method=method,
            path=request.rel_url.raw_path,
            started=started,
        )
        request[REQUEST_RECORD] = record
        route = request.match_info.route
        if route.name != TRANSCODE_ROUTE and route.resource is not None:
            record.route = route.resource.canonical
        metrics.in_flight += 1
        try:
            try:
                response = await handler(request)
            except asyncio.CancelledError:
                record.status = CLIENT_CLOSED_REQUEST
                raise
            except Exception as exc:  # every failure becomes an envelope
                response = error_response(exc, record.request_id, retry_after_s)
            if not response.prepared:  # a streaming dispatcher sets it before prepare()
                response.headers[REQUEST_ID_HEADER] = record.request_id
            record.status = response.status
            return response
        finally:
            metrics.in_flight -= 1
            duration = time.perf_counter() - started
            metrics.observe_request(record.route, method, record.status, duration)
            access_log.write(record, duration)

    return observe


def error_response(exc: BaseException, request_id: str, retry_after_s: int) -> web.Response:
    """The envelope (or 422 body) answering `exc`, with its headers."""
    try:
        rendered, headers = _answer(exc, retry_after_s)
    except Exception:
        ERROR_LOGGER.exception(
            "rendering an error response failed", extra={"request_id": request_id}
        )
        rendered, headers = RenderedError(FALLBACK_STATUS, FALLBACK_BODY), {}
    if rendered.status == 500:
        # The cause stays here, with the request id; the client gets a generic message.
        ERROR_LOGGER.error(
            "request failed: %s: %s",
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"request_id": request_id},
        )
    return web.Response(
        status=rendered.status, body=rendered.body, content_type=JSON_CONTENT_TYPE, headers=headers
    )


def _answer(exc: BaseException, retry_after_s: int) -> tuple[RenderedError, dict[str, str]]:
    if isinstance(exc, grpc.aio.AioRpcError):
        return _grpc_answer(exc, retry_after_s)
    if isinstance(exc, RouteNotFoundError):
        return _envelope(404, "route_not_found", "No route matches this path.")
    if isinstance(exc, MethodNotAllowedError):
        rendered, headers = _envelope(
            405,
            "method_not_allowed",
            "This path does not accept this method.",
            {"allowed": list(exc.allowed_methods)},
        )
        headers[hdrs.ALLOW] = ", ".join(exc.allowed_methods)
        return rendered, headers
    if isinstance(exc, BadPathError):
        return _envelope(400, "invalid_path", exc.reason)
    if isinstance(exc, InvalidRequestHeaderError):
        return _envelope(400, "invalid_header", exc.message, {"header": exc.header})
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        return _http_exception_answer(exc)
    if isinstance(exc, HttpProcessingError):
        return _parser_answer(exc)
    # The transcoder's own errors (422, 400 invalid JSON, 415), else a generic 500.
    return render_exception(exc), {}


def _grpc_answer(
    error: grpc.aio.AioRpcError, retry_after_s: int
) -> tuple[RenderedError, dict[str, str]]:
    trailing = error.trailing_metadata()
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _RESPONSE_TOO_LARGE in details:
        # Raised by this gateway's channel (max_message_bytes), not by the service:
        # not the client's quota (429) but an answer the gateway cannot take.
        return _envelope(
            500,
            "upstream_response_too_large",
            "The backend's answer is larger than the gateway accepts.",
        )
    rendered = render_error(from_grpc_error(code, details, trailing))
    headers = response_headers(error.initial_metadata(), trailing)
    if rendered.status == 503:
        headers.setdefault("Retry-After", str(retry_after_s))
    return rendered, headers


def _http_exception_answer(exc: web.HTTPException) -> tuple[RenderedError, dict[str, str]]:
    # aiohttp's own refusals, e.g. 413 from `request.read()` over `client_max_size`.
    if exc.status == 413:
        return _envelope(413, "payload_too_large", "The request body is larger than allowed.")
    return _envelope(exc.status, None, generic_message(exc.status))


def _parser_answer(exc: HttpProcessingError) -> tuple[RenderedError, dict[str, str]]:
    # Raised by aiohttp's HTTP parser before any handler (see app.GatewayRunner).
    # The parser's own message echoes request bytes, so it is not sent.
    if isinstance(exc, LineTooLong):
        # aiohttp raises the same class for the URL and for a header; its first
        # argument is the start of the offending text, and only a URL starts so.
        start = exc.args[0] if exc.args else b""
        if isinstance(start, str):
            start = start.encode("latin-1", "replace")
        if start.startswith((b"/", b"http://", b"https://", b"*")):
            return _envelope(414, "uri_too_long", "The request URL is longer than allowed.")
        return _envelope(431, "header_too_large", "A request header is longer than allowed.")
    if "too many headers" in str(exc.message).lower():
        return _envelope(431, "too_many_headers", "The request has more headers than allowed.")
    return _envelope(400, "malformed_request", "The request is not valid HTTP/1.1.")


def _envelope(
    status: int, code: str | None, message: str, details: Mapping[str, object] | None = None
) -> tuple[RenderedError, dict[str, str]]:
    return render_error(ApiError(status, message, code, details)), {}
