"""The aiohttp application: built once at start-up from the services it exposes.

`build_app` resolves the services' descriptors, builds the route table (a bad
`google.api.http` rule stops it here, naming the method) and wires one
catch-all route that hands every path to that table, so that every answer,
404 and 405 included, is the contract's JSON. The upstream channel and the
per-route dispatchers live in `cleanup_ctx`: opened before the first request,
closed after the last.

`start_site` serves it through `gateway.aiohttp_server.GatewayRunner`, which
answers the requests aiohttp rejects before any handler runs (malformed HTTP,
over-long lines, too many headers) with the same envelope.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final

import grpc
from aiohttp import web
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor

from gateway.access_log import AccessLog
from gateway.aiohttp_server import ConnectionSupport, GatewayRunner
from gateway.backend_state import BackendWatch
from gateway.config import GatewayConfig, parse_listen
from gateway.connection_guard import ConnectionCounter, ConnectionPolicy
from gateway.cors import add_cors, preflight_middleware
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
    REQUEST_RECORD,
    TRANSCODE_ROUTE,
    error_response,
    make_middleware,
)
from gateway.routing import Route, RouteTable
from gateway.stream_dispatch import StreamSettings
from gateway.stream_limits import StreamRegistry
from gateway.ui.routes import ui_routes
from gateway.upstream import backend_serving, open_channel
from observability.worker_metrics import WorkerMetricsSharing
from runtime.memory_release import releasing_memory_when_idle
from runtime.tasks import cancel_and_wait
from runtime.tls import Check, TlsConfigError, checking_certificates, file_stamps
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
    # The channel the dispatchers call on (replaced when its TLS files change).
    channel: grpc.aio.Channel | None = None
    # Channels replaced, closing once their calls finish.
    retiring: set[asyncio.Task[None]] = field(default_factory=set)
    # Whether the channel has a backend ready, and the task that follows it.
    backend: BackendWatch | None = None
    backend_task: asyncio.Task[None] | None = None


CONFIG: Final = web.AppKey("config", GatewayConfig)
METRICS: Final = web.AppKey("metrics", GatewayMetrics)
ACCESS_LOG: Final = web.AppKey("access_log", AccessLog)
ROUTES: Final = web.AppKey("routes", RouteTable)
LIFECYCLE: Final = web.AppKey("lifecycle", Lifecycle)
CONNECTIONS: Final = web.AppKey("connections", ConnectionCounter)
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
    middlewares = [
        make_middleware(
            metrics,
            access_log,
            config.retry_after_s,
            Admission(
                config.max_in_flight,
                Limit(config.auth_failure_burst, config.auth_failure_rate),
            ),
        )
    ]
    cors = config.cors_policy()
    if cors is not None:
        middlewares.append(preflight_middleware(cors, routes))
    app = web.Application(middlewares=middlewares, client_max_size=config.max_body_bytes)
    if cors is not None:
        add_cors(app, cors)
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
    if not config.admin_listen:  # else on the admin listener (`build_admin_app`)
        app.router.add_get("/metrics", _metrics, expect_handler=expect)
        if docs_routes is not None:
            app.router.add_routes(_expecting(docs_routes(routes), expect))
    if config.ui:
        # The execution viewer (static files; it calls the REST routes like any client).
        app.router.add_routes(_expecting(ui_routes(), expect))
    # Everything else belongs to the route table, 404 and 405 included.
    app.router.add_route("*", "/{path:.*}", _transcode, name=TRANSCODE_ROUTE, expect_handler=expect)
    return app


def build_admin_app(app: web.Application, docs_routes: DocsRoutes | None) -> web.Application:
    """The admin listener's app (`--admin-listen`): `app`'s /metrics, /openapi.json, /docs.

    Kept off the public listener so that metrics and the API description need not be
    reachable by API clients (and no TLS or CORS applies to the scraper).
    """
    admin = web.Application()

    async def metrics(request: web.Request) -> web.Response:
        return await _metrics_of(app)  # the gateway's, merged across workers if shared

    admin.router.add_get("/metrics", metrics)
    if docs_routes is not None:
        admin.router.add_routes(docs_routes(app[ROUTES]))
    return admin


async def start_admin_site(
    app: web.Application,
    config: GatewayConfig,
    docs_routes: DocsRoutes | None,
    *,
    reuse_port: bool = False,
) -> tuple[web.AppRunner, str, int] | None:
    """Listen on `config.admin_listen` if set; returns the runner, host and bound port.

    `reuse_port`: every worker of this server listens on the same admin address.
    """
    if not config.admin_listen:
        return None
    host, port = parse_listen(config.admin_listen)
    runner = web.AppRunner(build_admin_app(app, docs_routes), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
    except OSError as error:
        await runner.cleanup()
        raise OSError(f"cannot listen on --admin-listen {host}:{port}: {error.strerror}") from None
    bound: int = runner.addresses[0][1]
    return runner, host, bound


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
    lifecycle = app[LIFECYCLE]
    _use_channel(app, channel_factory(config))
    checks = []
    tls_paths = config.backend_tls_files.paths()
    if channel_factory is open_channel and tls_paths:
        checks.append(_channel_renewal(app, tls_paths))
    try:
        async with checking_certificates(checks, config.tls_reload_s):
            yield
    finally:
        await cancel_and_wait(lifecycle.backend_task)
        if lifecycle.channel is not None:
            await lifecycle.channel.close(grace=None)
        for retiring in list(lifecycle.retiring):
            retiring.cancel()
        app[ACCESS_LOG].flush()


def _use_channel(app: web.Application, channel: grpc.aio.Channel) -> None:
    """Send every new upstream call through `channel` (calls in flight keep theirs)."""
    config = app[CONFIG]
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
    lifecycle.dispatchers = {
        route: dispatcher_for(route, channel, settings, app[METRICS], streaming)
        for route in app[ROUTES].routes
    }
    lifecycle.channel = channel
    # Fail fast while this channel has no backend ready (`gateway.backend_state`).
    if lifecycle.backend_task is not None:
        lifecycle.backend_task.cancel()
    lifecycle.backend = BackendWatch(channel)
    lifecycle.backend_task = asyncio.create_task(lifecycle.backend.follow())


def _channel_renewal(app: web.Application, paths: Sequence[str]) -> Check:
    """A check that opens a new channel when the backend TLS files change.

    Channel credentials are fixed when a channel is made, so a rotated client
    certificate or CA needs a new channel; the old one closes once its calls finish.
    """
    stamps = file_stamps(paths)

    def check(force: bool) -> bool:
        nonlocal stamps
        current = file_stamps(paths)
        if current == stamps and not force:
            return False
        try:
            channel = open_channel(app[CONFIG])
        except TlsConfigError as error:
            LOGGER.warning("backend TLS files not reloaded, the channel stays: %s", error)
            return False
        stamps = current
        lifecycle = app[LIFECYCLE]
        old = lifecycle.channel
        _use_channel(app, channel)
        if old is not None:
            task = asyncio.create_task(old.close(grace=app[CONFIG].max_timeout_s))
            lifecycle.retiring.add(task)
            task.add_done_callback(lifecycle.retiring.discard)
        LOGGER.info("backend TLS files changed: new channel to %s", app[CONFIG].grpc_target)
        return True

    return check


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
    backend = app[LIFECYCLE].backend
    if backend is not None:
        backend.refuse_if_down()  # after routing: a wrong path is still a 404
    record = request[REQUEST_RECORD]
    record.route = match.route.template.source
    return await app[LIFECYCLE].dispatchers[match.route](request, match, record)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type=JSON_CONTENT_TYPE)


async def _readyz(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG]
    channel = app[LIFECYCLE].channel
    if app[LIFECYCLE].draining:
        reason = "The gateway is shutting down."
        code = "shutting_down"
    elif channel is not None and await backend_serving(channel, config.ready_timeout_s):
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
    return await _metrics_of(request.app)


async def _metrics_of(app: web.Application) -> web.Response:
    metrics = app[METRICS]
    sharing = app.get(SHARED_METRICS)
    body = metrics.exposition() if sharing is None else await sharing.exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = metrics.content_type
    return response


def connection_policy(config: GatewayConfig) -> ConnectionPolicy:
    return ConnectionPolicy(
        header_timeout_s=config.header_timeout_s,
        body_timeout_s=config.body_timeout_s,
        send_timeout_s=config.send_timeout_s,
        write_buffer_bytes=config.write_buffer_bytes,
    )


async def start_site(
    app: web.Application,
    config: GatewayConfig,
    ssl_context: ssl.SSLContext | None = None,
    *,
    reuse_port: bool = False,
) -> tuple[GatewayRunner, int]:
    """Set the app up and listen on `config.host:config.port`; returns the bound port.

    `ssl_context`: HTTPS (`runtime.tls.ServerCertificate.ssl_context`, which reloads).
    `reuse_port`: share the port with the other workers of this server (SO_REUSEPORT).

    `handler_cancellation=True`: a client that disconnects cancels its handler,
    and with it the upstream call (aiohttp 3.x does not cancel by default).
    """
    support = ConnectionSupport(
        app[METRICS],
        app[ACCESS_LOG],
        config.retry_after_s,
        connection_policy(config),
        app[CONNECTIONS],
    )
    runner = GatewayRunner(
        app,
        support,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=config.shutdown_timeout_s,
        keepalive_timeout=config.keepalive_timeout_s,
        max_line_size=config.max_line_size,
        max_field_size=config.max_field_size,
        max_headers=config.max_headers,
    )
    await runner.setup()
    site = web.TCPSite(
        runner,
        config.host,
        config.port,
        reuse_address=True,
        reuse_port=reuse_port,
        ssl_context=ssl_context,
    )
    await site.start()
    port: int = runner.addresses[0][1]
    return runner, port
