"""The aiohttp application: built once at start-up from the services it exposes.

`build_app` resolves the services' descriptors, builds the route table (a bad
`google.api.http` rule stops it here, naming the method) and wires one
catch-all route that hands every path to that table, so that every answer,
404 and 405 included, is the contract's JSON. The upstream channel and the
per-route dispatchers live in `cleanup_ctx`: opened before the first request,
closed after the last.

`GatewayRunner` answers the requests aiohttp rejects before any handler runs
(malformed HTTP, over-long lines, too many headers) with the same envelope.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import grpc
from aiohttp import web, web_protocol
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.http_exceptions import HttpProcessingError
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor

from gateway.access_log import AccessLog, RequestRecord
from gateway.backend_state import BackendWatch, following
from gateway.config import GatewayConfig
from gateway.connection_guard import ConnectionCounter, ConnectionPolicy, GuardedRequestHandler
from gateway.dispatch import (
    JSON_CONTENT_TYPE,
    Dispatcher,
    DispatchSettings,
    StreamContext,
    dispatcher_for,
)
from gateway.errors import ApiError, render_error
from gateway.errors.request_refusals import continue_or_defer
from gateway.load_shedding import Admission
from gateway.metrics import GatewayMetrics
from gateway.middleware import (
    REQUEST_ID_HEADER,
    REQUEST_RECORD,
    TRANSCODE_ROUTE,
    error_response,
    make_middleware,
    request_id_from,
)
from gateway.routing import Route, RouteTable
from gateway.stream_dispatch import StreamSettings
from gateway.stream_limits import StreamRegistry
from gateway.ui.routes import ui_routes
from gateway.upstream import backend_serving, open_channel
from observability.worker_metrics import WorkerMetricsSharing
from runtime.memory_release import releasing_memory_when_idle
from runtime.token_bucket import Limit
from runtime.worker import Worker

LOGGER: Final = logging.getLogger("execgate.gateway")

# Opens the upstream channel at start-up: `open_channel` (real gRPC) unless the
# gateway runs in one process with the service (`singleprocess`).
ChannelFactory = Callable[[GatewayConfig], grpc.aio.Channel]
# Extra routes (the OpenAPI document and docs page from `gateway.openapi`),
# given the route table the gateway serves, so the document describes exactly it.
DocsRoutes = Callable[[RouteTable], Iterable[web.AbstractRouteDef]]


@dataclass(slots=True)
class Lifecycle:
    """Mutable run state shared by handlers: draining starts at SIGTERM (readyz → 503)."""

    draining: bool = False
    dispatchers: dict[Route, Dispatcher] = field(default_factory=dict)


# What aiohttp's server builds a request with (message, payload, protocol, writer, task).
_RequestFactory = Callable[..., web.BaseRequest]
# aiohttp's stand-in message for a request its parser refused (not public API: if an
# upgrade drops it, refusals keep aiohttp's HTTP/1.0 status line, and
# test_requests_aiohttp_refuses_get_the_envelope fails).
_PARSER_ERROR_MESSAGE: Final[RawRequestMessage | None] = getattr(web_protocol, "ERROR", None)

CONFIG: Final = web.AppKey("config", GatewayConfig)
METRICS: Final = web.AppKey("metrics", GatewayMetrics)
ACCESS_LOG: Final = web.AppKey("access_log", AccessLog)
ROUTES: Final = web.AppKey("routes", RouteTable)
LIFECYCLE: Final = web.AppKey("lifecycle", Lifecycle)
CHANNEL: Final = web.AppKey("channel", grpc.aio.Channel)
CONNECTIONS: Final = web.AppKey("connections", ConnectionCounter)
BACKEND: Final = web.AppKey("backend", BackendWatch)
# Set when this process is one of several workers: /metrics merges all of them.
SHARED_METRICS: Final = web.AppKey("shared_metrics", WorkerMetricsSharing)
STREAMS: Final = web.AppKey("streams", StreamRegistry)


class ServiceNotFoundError(LookupError):
    """A configured service name is in no generated module; raised at start-up."""


def resolve_services(names: Sequence[str]) -> list[ServiceDescriptor]:
    """The descriptors of `names` from the default pool of the generated `execgate` modules."""
    _import_generated_modules()
    pool = descriptor_pool.Default()
    services = []
    for name in names:
        try:
            services.append(pool.FindServiceByName(name))
        except KeyError:
            raise ServiceNotFoundError(
                f"service {name!r} is not defined by any generated module under execgate/"
            ) from None
    return services


def _import_generated_modules() -> None:
    # Importing a `_pb2` module registers its file in the default pool.
    import execgate

    for module in pkgutil.walk_packages(execgate.__path__, "execgate."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)


def build_app(
    config: GatewayConfig,
    *,
    access_log: AccessLog | None = None,
    docs_routes: DocsRoutes | None = None,
    channel_factory: ChannelFactory = open_channel,
) -> web.Application:
    """The gateway app; `access_log` defaults to stderr (or off, per `config.access_log`)."""
    routes = RouteTable.from_services(resolve_services(config.services))
    metrics = GatewayMetrics()
    if access_log is None:
        access_log = AccessLog(sys.stderr.buffer if config.access_log else None)
    app = web.Application(
        middlewares=[
            make_middleware(
                metrics,
                access_log,
                config.retry_after_s,
                Admission(
                    config.max_in_flight,
                    Limit(config.auth_failure_burst, config.auth_failure_rate),
                ),
            )
        ],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG] = config
    app[METRICS] = metrics
    app[ACCESS_LOG] = access_log
    app[ROUTES] = routes
    app[LIFECYCLE] = Lifecycle()
    app[CONNECTIONS] = ConnectionCounter(config.max_connections, config.max_connections_per_client)
    app[STREAMS] = StreamRegistry(config.max_streams_per_key)
    app.cleanup_ctx.append(partial(_upstream, channel_factory=channel_factory))
    app.cleanup_ctx.append(_memory_release)
    app.on_shutdown.append(_start_draining)
    app.on_shutdown.append(_end_streams)
    # Every route leaves an unmet `Expect` to the middleware (a 417 envelope).
    expect = continue_or_defer
    app.router.add_get("/healthz", _healthz, allow_head=True, expect_handler=expect)
    app.router.add_get("/readyz", _readyz, allow_head=True, expect_handler=expect)
    app.router.add_get("/metrics", _metrics, expect_handler=expect)
    if docs_routes is not None:
        app.router.add_routes(_expecting(docs_routes(routes), expect))
    if config.ui:
        # The execution viewer (static files; it calls the REST routes like any client).
        app.router.add_routes(_expecting(ui_routes(), expect))
    # Everything else belongs to the route table, 404 and 405 included.
    app.router.add_route("*", "/{path:.*}", _transcode, name=TRANSCODE_ROUTE, expect_handler=expect)
    return app


def _expecting(
    definitions: Iterable[web.AbstractRouteDef],
    expect: Callable[[web.Request], Awaitable[None]],
) -> list[web.AbstractRouteDef]:
    """The route definitions with `expect` as their `expect_handler`."""
    return [
        web.RouteDef(d.method, d.path, d.handler, {**d.kwargs, "expect_handler": expect})
        if isinstance(d, web.RouteDef)
        else d
        for d in definitions
    ]


async def _upstream(app: web.Application, channel_factory: ChannelFactory) -> AsyncIterator[None]:
    config = app[CONFIG]
    channel = channel_factory(config)
    app[CHANNEL] = channel
    settings = DispatchSettings(
        default_timeout_s=config.default_timeout_s,
        max_timeout_s=config.max_timeout_s,
        gzip_min_bytes=config.gzip_min_bytes,
    )
    streaming = StreamContext(
        StreamSettings(
            timeout_s=config.stream_timeout_s,
            heartbeat_s=config.stream_heartbeat_s,
        ),
        app[STREAMS],
        partial(error_response, retry_after_s=config.retry_after_s),
    )
    lifecycle = app[LIFECYCLE]
    for route in app[ROUTES].routes:
        lifecycle.dispatchers[route] = dispatcher_for(
            route, channel, settings, app[METRICS], streaming
        )
    try:
        async with following(BackendWatch(channel)) as watch:
            app[BACKEND] = watch
            yield
    finally:
        await channel.close(grace=None)
        app[ACCESS_LOG].flush()


async def _memory_release(app: web.Application) -> AsyncIterator[None]:
    async with releasing_memory_when_idle(app[METRICS]):
        yield


async def _start_draining(app: web.Application) -> None:
    app[LIFECYCLE].draining = True


async def _end_streams(app: web.Application) -> None:
    # Before aiohttp waits for in-flight handlers: open streams end cleanly now.
    app[STREAMS].close()


async def _transcode(request: web.Request) -> web.StreamResponse:
    app = request.app
    match = app[ROUTES].lookup(request.method, request.raw_path)
    app[BACKEND].refuse_if_down()  # after routing: a wrong path is still a 404
    record = request[REQUEST_RECORD]
    record.route = match.route.template.source
    return await app[LIFECYCLE].dispatchers[match.route](request, match, record)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type=JSON_CONTENT_TYPE)


async def _readyz(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG]
    if app[LIFECYCLE].draining:
        reason = "The gateway is shutting down."
        code = "shutting_down"
    elif await backend_serving(app[CHANNEL], config.ready_timeout_s):
        return web.Response(body=b'{"status":"ready"}', content_type=JSON_CONTENT_TYPE)
    else:
        reason = "The backend is not serving."
        code = "backend_unavailable"
    return web.Response(
        status=503,
        body=render_error(ApiError(503, reason, code)).body,
        content_type=JSON_CONTENT_TYPE,
        headers={"Retry-After": str(config.retry_after_s)},
    )


# With several workers on one port: how long a worker keeps serving its open connections
# after closing its listener, so that every sibling (signalled at the same moment) has
# closed its listener too before connections close and their clients reconnect.
SIBLINGS_STOP_LISTENING_S: Final = 0.5


async def stop_listening_before_cleanup(runner: web.AppRunner, worker: Worker | None) -> None:
    """Close the listening sockets; as a worker, then wait `SIBLINGS_STOP_LISTENING_S`.

    A client whose connection is closed at shutdown reconnects at once. With SO_REUSEPORT
    its new connection may land in the queue of a sibling's listener that is about to
    close, and the kernel resets every connection still queued there (a failed request,
    not a refused connection). Closing connections only after every listener is gone
    means such a client is refused cleanly instead.
    """
    for site in list(runner.sites):
        await site.stop()  # the listener only; connections are served on
    if worker is not None:
        await asyncio.sleep(SIBLINGS_STOP_LISTENING_S)


def share_metrics_with_workers(app: web.Application, worker: Worker) -> None:
    """Make this app's /metrics the whole server's when it runs as one of several workers."""
    sharing = WorkerMetricsSharing(worker, "gateway", app[METRICS].exposition)
    app[SHARED_METRICS] = sharing

    async def serving(app: web.Application) -> AsyncIterator[None]:
        await sharing.start()
        try:
            yield
        finally:
            await sharing.stop()

    app.cleanup_ctx.append(serving)


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    sharing = request.app.get(SHARED_METRICS)
    body = metrics.exposition() if sharing is None else await sharing.exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = metrics.content_type
    return response


class GatewayRunner(web.AppRunner):
    """An `AppRunner` whose connections answer aiohttp's own refusals with the envelope."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        app = self.app
        return _EnvelopeServer(
            server.request_handler,
            request_factory=_http11_refusals(server.request_factory),
            handler_cancellation=server.handler_cancellation,
            metrics=app[METRICS],
            request_log=app[ACCESS_LOG],
            retry_after_s=app[CONFIG].retry_after_s,
            policy=connection_policy(app[CONFIG]),
            counter=app[CONNECTIONS],
            **server._kwargs,
        )


def connection_policy(config: GatewayConfig) -> ConnectionPolicy:
    return ConnectionPolicy(
        header_timeout_s=config.header_timeout_s,
        body_timeout_s=config.body_timeout_s,
        send_timeout_s=config.send_timeout_s,
        write_buffer_bytes=config.write_buffer_bytes,
    )


class _EnvelopeServer(web.Server):
    def __init__(
        self,
        *args: Any,
        metrics: GatewayMetrics,
        request_log: AccessLog,
        retry_after_s: int,
        policy: ConnectionPolicy,
        counter: ConnectionCounter,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics
        self.request_log = request_log
        self.retry_after_s = retry_after_s
        self.policy = policy
        self.counter = counter

    def __call__(self) -> web.RequestHandler:
        return _EnvelopeRequestHandler(
            self,
            loop=self._loop,
            policy=self.policy,
            counter=self.counter,
            refusal=self.refusal,
            **self._kwargs,
        )

    def refusal(self, error: BaseException) -> bytes:
        """A whole HTTP/1.1 answer to `error` for a connection without a request
        (refused at accept, or its request head never came), logged and counted."""
        request_id = request_id_from(None)
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
        return raw_response(response, request_id)


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
        server = self._envelope_server
        started = time.perf_counter()
        request_id = request_id_from(None)
        cause = exc if isinstance(exc, HttpProcessingError) else _status_exception(status, exc)
        response = error_response(cause, request_id, server.retry_after_s)
        response.headers[REQUEST_ID_HEADER] = request_id
        response.force_close()
        record = RequestRecord(
            request_id=request_id, method="OTHER", path="", started=started, status=response.status
        )
        server.metrics.observe_request(record.route, record.method, record.status, 0.0)
        server.request_log.write(record, 0.0)
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


async def start_site(
    app: web.Application, config: GatewayConfig, *, reuse_port: bool = False
) -> tuple[GatewayRunner, int]:
    """Set the app up and listen on `config.host:config.port`; returns the bound port.

    `reuse_port`: share the port with the other workers of this server (SO_REUSEPORT).

    `handler_cancellation=True`: a client that disconnects cancels its handler,
    and with it the upstream call (aiohttp 3.x does not cancel by default).
    """
    runner = GatewayRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=config.shutdown_timeout_s,
        keepalive_timeout=config.keepalive_timeout_s,
        max_line_size=config.max_line_size,
        max_field_size=config.max_field_size,
        max_headers=config.max_headers,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True, reuse_port=reuse_port)
    await site.start()
    port: int = runner.addresses[0][1]
    return runner, port
