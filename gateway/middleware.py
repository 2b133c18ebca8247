"""The one middleware: request id, error envelopes, metrics and the access log.

Every request passes through `observe`; every exception a handler raises is
turned into the contract's envelope by `error_response`, which answers by the
error table (`gateway.errors`). A cause the client must not see (an unexpected
exception) is logged with the request id and answered generically.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.access_log import CLIENT_CLOSED_REQUEST, ERROR_LOGGER, AccessLog, RequestRecord
from gateway.dispatch import JSON_CONTENT_TYPE
from gateway.errors import FALLBACK_BODY, FALLBACK_STATUS, RenderedError, answer
from gateway.errors.request_refusals import refuse_unservable
from gateway.load_shedding import Admission
from gateway.metrics import GatewayMetrics
from gateway.upstream import REQUEST_ID_HEADER as REQUEST_ID_HEADER  # for aiohttp_server

REQUEST_RECORD: Final = web.RequestKey("request_record", RequestRecord)
# Name of the catch-all aiohttp route; its handler labels requests with the
# matched google.api.http template, other routes (operations, docs) with their own path.
TRANSCODE_ROUTE: Final = "transcode"
# A client's request id is echoed and forwarded only if it is short and plain.
_CLIENT_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


def request_id_from(client_value: str | None) -> str:
    """The client's X-Request-Id when it is safe to echo and forward, else a new one."""
    if client_value is not None and _CLIENT_REQUEST_ID.fullmatch(client_value):
        return client_value
    return secrets.token_hex(16)


def make_middleware(
    metrics: GatewayMetrics, access_log: AccessLog, retry_after_s: int, admission: Admission
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
        api = route.name == TRANSCODE_ROUTE  # health, metrics and docs are never shed
        if not api and route.resource is not None:
            record.route = route.resource.canonical
        client = request.remote or ""
        metrics.in_flight += 1
        try:
            try:
                if api:  # open streams have their own bound (max_streams_per_key)
                    admission.admit(client, metrics.in_flight - metrics.streams_open)
                refuse_unservable(request)
                response = await handler(request)
            except asyncio.CancelledError:
                record.status = CLIENT_CLOSED_REQUEST
                raise
            except Exception as exc:  # every failure becomes an envelope
                response = error_response(exc, record.request_id, retry_after_s)
            if not response.prepared:  # a streaming dispatcher sets it before prepare()
                response.headers[REQUEST_ID_HEADER] = record.request_id
            record.status = response.status
            if api:
                admission.answered(client, record.status)
            return response
        finally:
            metrics.in_flight -= 1
            duration = time.perf_counter() - started
            metrics.observe_request(record.route, method, record.status, duration)
            access_log.write(record, duration)

    return observe


def error_response(exc: BaseException, request_id: str, retry_after_s: int) -> web.Response:
    """The envelope (or 422 body) answering `exc` by the error table, with its headers."""
    try:
        rendered, headers = answer(exc, retry_after_s)[1:]
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
