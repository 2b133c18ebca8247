"""The aiohttp server under the gateway, so that aiohttp's own refusals get the envelope.

aiohttp answers the requests its HTTP parser refuses (malformed HTTP, over-long
lines, too many headers) itself, in plain text, before any handler or middleware
runs. The only way in is aiohttp's server construction, which is not public API:
`AppRunner._make_server`, `web.Server`'s `_kwargs` and `_loop`,
`RequestHandler.handle_error`, and the parser's stand-in message `ERROR`. All of
it is here, away from the application; docs/upgrading.md lists it with the test
that fails if an aiohttp upgrade changes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web, web_protocol
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.http_exceptions import HttpProcessingError

from gateway.access_log import AccessLog, RequestRecord
from gateway.connection_guard import ConnectionCounter, ConnectionPolicy, GuardedRequestHandler
from gateway.metrics import GatewayMetrics
from gateway.middleware import REQUEST_ID_HEADER, error_response, request_id_from

# What aiohttp's server builds a request with (message, payload, protocol, writer, task).
_RequestFactory = Callable[..., web.BaseRequest]
# aiohttp's stand-in message for a request its parser refused (not public API: if an
# upgrade drops it, refusals keep aiohttp's HTTP/1.0 status line, and
# test_requests_aiohttp_refuses_get_the_envelope fails).
_PARSER_ERROR_MESSAGE: Final[RawRequestMessage | None] = getattr(web_protocol, "ERROR", None)


@dataclass(frozen=True, slots=True)
class ConnectionSupport:
    """What the server's connections need besides aiohttp's settings."""

    metrics: GatewayMetrics
    request_log: AccessLog
    retry_after_s: int
    policy: ConnectionPolicy
    counter: ConnectionCounter

    def refusal(self, error: BaseException, request_id: str) -> web.Response:
        """The envelope answering `error` outside any handler, counted and logged."""
        response = error_response(error, request_id, self.retry_after_s)
        record = RequestRecord(
            request_id=request_id,
            method="OTHER",
            path="",
            started=time.perf_counter(),
            status=response.status,
        )
        self.metrics.observe_request(record.route, record.method, record.status, 0.0)
        self.request_log.write(record, 0.0)
        return response


class GatewayRunner(web.AppRunner):
    """An `AppRunner` whose connections answer aiohttp's own refusals with the envelope."""

    def __init__(self, app: web.Application, support: ConnectionSupport, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._support = support

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _EnvelopeServer(
            server.request_handler,
            request_factory=_http11_refusals(server.request_factory),
            handler_cancellation=server.handler_cancellation,
            support=self._support,
            **server._kwargs,
        )


class _EnvelopeServer(web.Server):
    def __init__(self, *args: Any, support: ConnectionSupport, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.support = support

    def __call__(self) -> web.RequestHandler:
        return _EnvelopeRequestHandler(
            self,
            loop=self._loop,
            policy=self.support.policy,
            counter=self.support.counter,
            refusal=self.refusal,
            **self._kwargs,
        )

    def refusal(self, error: BaseException) -> bytes:
        """A whole HTTP/1.1 answer to `error` for a connection without a request
        (refused at accept, or its request head never came), logged and counted."""
        request_id = request_id_from(None)
        return raw_response(self.support.refusal(error, request_id), request_id)


def raw_response(response: web.Response, request_id: str) -> bytes:
    """`response` (a small envelope) as the bytes of an HTTP/1.1 answer that closes."""
    body = response.body
    assert isinstance(body, bytes)
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    headers = {**response.headers, REQUEST_ID_HEADER: request_id, "Connection": "close"}
    headers["Content-Length"] = str(len(body))
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _EnvelopeRequestHandler(GuardedRequestHandler):
    def __init__(self, server: _EnvelopeServer, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        # Kept here: aiohttp clears its own reference to the server on disconnect.
        self._envelope_server = server

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # Same contract as aiohttp's: nothing sent yet, and the connection closes after.
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error")
        request_id = request_id_from(None)
        cause = exc if isinstance(exc, HttpProcessingError) else _status_exception(status, exc)
        response = self._envelope_server.support.refusal(cause, request_id)
        response.headers[REQUEST_ID_HEADER] = request_id
        response.force_close()
        return response


def _http11_refusals(factory: _RequestFactory) -> _RequestFactory:
    """`factory`, but a request the parser refused is answered on an HTTP/1.1 status line.

    aiohttp stands such a request in as its `ERROR` message, an HTTP/1.0 one, and the
    response's status line takes the request's version; this gateway speaks HTTP/1.1.
    """

    def make(message: RawRequestMessage, *args: Any) -> web.BaseRequest:
        if message is _PARSER_ERROR_MESSAGE:
            message = message._replace(version=HttpVersion11)
        return factory(message, *args)

    return make


def _status_exception(status: int, exc: BaseException | None) -> BaseException:
    # What reaches here besides parser errors: an exception that escaped the
    # middleware (500) or a handler timeout (504); keep the cause for the log.
    if status == 504:
        return web.HTTPGatewayTimeout()
    return exc if exc is not None else RuntimeError(f"aiohttp answered {status}")
