"""The grpc.aio server: both execution services, reflection, health, graceful shutdown.

Health also follows the store: it is polled every few seconds and every
service reports NOT_SERVING while the store does not answer, so a load
balancer or the gateway's readiness check can route around this replica.

Shutdown order (SIGTERM or SIGINT): health flips to NOT_SERVING for every
service, then (after an optional drain delay, so load balancers that poll
health stop sending new calls) open WatchExecution streams end at once with
a resumable UNAVAILABLE (they would otherwise hold the whole grace period),
the server stops accepting calls and gives in-flight ones up to a grace
period to finish; the metrics endpoint closes
last (so the final calls can still be scraped until then); the process then exits 0.

Observability: every RPC of the execution services is counted in
`ExecutionServer.metrics` and written to the access log by the handler guard
(`service.rpc.guard`); the store is wrapped so that each of its operations is
timed (`service.store.instrumented`). `serve` exposes the metrics over HTTP on
their own port (`service.metrics_endpoint`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass
from typing import Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from observability.worker_metrics import WorkerMetricsSharing
from runtime.memory_release import releasing_memory_when_idle
from runtime.ready_file import GRPC, METRICS, address, write_ready_file
from runtime.tls import ServerCertificate, ServerTlsFiles, checking_certificates, server_check
from runtime.token_bucket import Limit
from runtime.worker import Worker
from service.access_log import AccessLog
from service.auth import DEFAULT_CACHE_SECONDS, Authenticator
from service.metrics import ServiceMetrics
from service.metrics_endpoint import MetricsEndpoint, parse_metrics_listen
from service.retrievers import RetrieverDirectory
from service.rpc.reads import ExecutionReader
from service.rpc.registry import SERVICE_NAMES, generic_handlers
from service.rpc.watch import (
    DEFAULT_KEEPALIVE_SECONDS,
    DEFAULT_MAX_STREAM_SECONDS,
    ExecutionWatcher,
    WatchSettings,
)
from service.rpc.writes import ExecutionWriter
from service.store import open_store
from service.store.instrumented import InstrumentedStore
from service.store.protocol import Store
from service.watch.hub import DEFAULT_MAX_WATCHERS, DEFAULT_POLL_SECONDS, WatchHub

_log = logging.getLogger(__name__)

# A completed execution with 1,000 documents is ~330 KB; writers may send more.
# Explicit limits rather than grpc's defaults (4 MiB in, unlimited out).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_STORE_CHECK_SECONDS = 2.0
DEFAULT_MAX_IN_FLIGHT = 256

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Keepalive: ping an idle client every 60 s and drop it if no answer in
    # 20 s (finds dead peers behind NATs and load balancers) ...
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    # ... and let clients (the gateway) ping us as often as every 10 s, even
    # without calls in flight, without being disconnected for "too many pings".
    # A client's keepalive_time_ms must not go below this. (The C-core name of
    # GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS; an unknown name is
    # silently ignored, leaving the default of 5 minutes.)
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Fail at start-up when the port is taken instead of silently sharing it.
    ("grpc.so_reuseport", 0),
)
# A worker of several (`--workers`): they all listen on one port, by SO_REUSEPORT.
SHARED_PORT_SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    *(option for option in SERVER_OPTIONS if option[0] != "grpc.so_reuseport"),
    ("grpc.so_reuseport", 1),
)


@dataclass(frozen=True, slots=True)
class ServeSettings:
    listen: str = "127.0.0.1:50051"
    store_url: str = "sqlite:///var/execgate.db"
    grace_seconds: float = 10.0
    drain_seconds: float = 0.0
    cache_seconds: float = DEFAULT_CACHE_SECONDS
    store_check_seconds: float = DEFAULT_STORE_CHECK_SECONDS
    # HOST:PORT of the Prometheus /metrics endpoint (conventionally port 9464);
    # "" or "0" turns it off. Off by default: a fixed default port would stop a
    # second service process on the same host (replica, test, benchmark) from starting.
    metrics_listen: str = ""
    access_log: bool = True  # one JSON line per RPC on stderr
    log_level: str = "INFO"  # of every logger of the process
    # Calls handled at once by this process; beyond, RESOURCE_EXHAUSTED OVERLOADED at once.
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    # Default rate limit of every API key, per process: a burst, then requests per second
    # (a key's own limit, `admin create-key --rate-per-second`, wins). Off (rate 0) unless
    # set: one client's load test or batch job reaches any fixed default on a fast box.
    rate_limit_burst: int = 2000
    rate_limit_rate: float = 0.0
    uvloop: bool = True  # run on uvloop rather than asyncio's own loop
    # WatchExecution: a heartbeat event after this many idle seconds (0: none) ...
    watch_keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS
    # ... and streams end (UNAVAILABLE, resumable) after this many seconds (0: never).
    watch_max_seconds: float = DEFAULT_MAX_STREAM_SECONDS
    # How often a SQLite store is checked for commits by other processes.
    watch_poll_seconds: float = DEFAULT_POLL_SECONDS
    # Concurrent watch streams per process; more are RESOURCE_EXHAUSTED.
    max_watchers: int = DEFAULT_MAX_WATCHERS
    # Written once listening: pid and bound addresses (runtime/ready_file.py); "" none.
    ready_file: str = ""
    # Processes serving the one port (SO_REUSEPORT) under a supervisor; 1: this process alone.
    workers: int = 1
    # TLS on the gRPC port (runtime/tls.py): certificate and key files ("": plaintext) ...
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # ... and, for mutual TLS, the CA that client certificates must be signed by.
    tls_client_ca_file: str = ""

    @property
    def tls(self) -> ServerTlsFiles:
        return ServerTlsFiles(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)

    def __post_init__(self) -> None:
        # `serve` loads a certificate only when a cert file is set, so a client CA or
        # key alone would otherwise serve plaintext; raises TlsConfigError (ValueError).
        self.tls.check()


class ExecutionServer:
    """The gRPC server over an opened store (the store's lifetime is the caller's).

    `access_log` defaults to off; `serve` writes it to stderr.
    """

    def __init__(
        self,
        store: Store,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        store_check_seconds: float = DEFAULT_STORE_CHECK_SECONDS,
        access_log: AccessLog | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        rate_limit: Limit | None = None,
        watch: WatchSettings = WatchSettings(),  # noqa: B008 (frozen)
        watch_poll_seconds: float = DEFAULT_POLL_SECONDS,
        max_watchers: int = DEFAULT_MAX_WATCHERS,
        reuse_port: bool = False,
    ) -> None:
        """`reuse_port`: share the port with the other workers of this server (SO_REUSEPORT)."""
        self.metrics = ServiceMetrics()
        store = InstrumentedStore(store, self.metrics)
        self._store = store
        self._store_check_seconds = store_check_seconds
        self._store_watch: asyncio.Task[None] | None = None
        authenticator = Authenticator(store, cache_seconds=cache_seconds, rate_limit=rate_limit)
        retrievers = RetrieverDirectory(store, cache_seconds=cache_seconds)
        self.watch_hub = WatchHub(
            store,
            poll_seconds=watch_poll_seconds,
            max_watchers=max_watchers,
            metrics=self.metrics,
        )
        self.health = health.aio.HealthServicer()
        self._server = grpc.aio.server(
            options=SHARED_PORT_SERVER_OPTIONS if reuse_port else SERVER_OPTIONS
        )
        # Kept for `singleprocess`, which also calls them without a network hop.
        self.handlers: Final = generic_handlers(
            ExecutionReader(store, authenticator, retrievers),
            ExecutionWriter(store, authenticator, retrievers, on_change=self.watch_hub.changed),
            ExecutionWatcher(store, authenticator, retrievers, self.watch_hub, watch),
            self.metrics,
            access_log or AccessLog(None),
            max_in_flight,
        )
        self._server.add_generic_rpc_handlers(self.handlers)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )

    async def start(self, listen: str | None, tls: ServerCertificate | None = None) -> int:
        """Bind and start; returns the port (useful with port 0).

        `listen=None`: no port (returns 0); only in-process callers of
        `handlers` and `health` are served, and health still follows the store.
        `tls`: the port speaks TLS with this (reloading) certificate.
        """
        await self.watch_hub.start()
        port = 0
        if listen is not None:
            try:
                if tls is None:
                    port = self._server.add_insecure_port(listen)
                else:
                    port = self._server.add_secure_port(listen, tls.grpc_credentials())
            except RuntimeError:  # grpc's "Failed to bind to address ..."
                port = 0
            if port == 0:
                raise OSError(f"cannot listen on {listen} (address in use or not resolvable)")
            await self._server.start()
        await self._set_health(serving=True)
        if self._store_check_seconds > 0:
            self._store_watch = asyncio.create_task(self._watch_store())
        return port

    async def stop(self, *, grace_seconds: float, drain_seconds: float = 0.0) -> None:
        if self._store_watch is not None:
            self._store_watch.cancel()
        await self.health.enter_graceful_shutdown()
        if drain_seconds > 0:
            await asyncio.sleep(drain_seconds)
        # Watch streams never finish on their own: end them now (resumable
        # UNAVAILABLE) rather than let them hold the whole grace period.
        await self.watch_hub.close()
        await self._server.stop(grace_seconds)

    async def _set_health(self, *, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)  # ignored once shutdown has begun

    async def _watch_store(self) -> None:
        serving = True
        while True:
            await asyncio.sleep(self._store_check_seconds)
            try:
                healthy = await asyncio.wait_for(
                    self._store.healthy(), timeout=self._store_check_seconds
                )
            except Exception:  # a check that fails in any way means "not healthy"
                healthy = False
            if healthy != serving:
                serving = healthy
                _log.warning(
                    "store %s: health now %s",
                    "back" if healthy else "unavailable",
                    "SERVING" if healthy else "NOT_SERVING",
                )
                await self._set_health(serving=healthy)


async def serve(settings: ServeSettings, worker: Worker | None = None) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully.

    `worker`: this process is one of several sharing the ports; its metrics
    endpoint answers for all of them.
    """
    metrics_address = parse_metrics_listen(settings.metrics_listen)
    # A bad certificate file stops start-up here, before the store opens.
    certificate = ServerCertificate(settings.tls) if settings.tls.enabled else None
    access_log = AccessLog(sys.stderr.buffer if settings.access_log else None)
    store = open_store(settings.store_url)
    await store.open()
    try:
        server = ExecutionServer(
            store,
            cache_seconds=settings.cache_seconds,
            store_check_seconds=settings.store_check_seconds,
            access_log=access_log,
            max_in_flight=settings.max_in_flight,
            rate_limit=rate_limit(settings.rate_limit_burst, settings.rate_limit_rate),
            watch=WatchSettings(
                keepalive_seconds=settings.watch_keepalive_seconds,
                max_stream_seconds=settings.watch_max_seconds,
            ),
            watch_poll_seconds=settings.watch_poll_seconds,
            max_watchers=settings.max_watchers,
            reuse_port=worker is not None,
        )
        endpoint = None
        listening: dict[str, str] = {}
        if metrics_address is not None:
            sharing = (
                None
                if worker is None
                else WorkerMetricsSharing(worker, "service", server.metrics.exposition)
            )
            endpoint = MetricsEndpoint(server.metrics, sharing)
            metrics_port = await endpoint.start(*metrics_address)
            listening[METRICS] = address(metrics_address[0], metrics_port)
            _log.info("metrics on http://%s:%d/metrics", metrics_address[0], metrics_port)
        try:
            # gRPC re-reads changed files before each handshake; SIGHUP forces a re-read.
            checks = [server_check(certificate)] if certificate is not None else []
            async with (
                releasing_memory_when_idle(server.metrics),
                checking_certificates(checks, interval_s=0),
            ):
                await _serve_until_signal(server, settings, listening, certificate, worker)
        finally:
            access_log.flush()
            if endpoint is not None:
                await endpoint.stop()
    finally:
        await store.close()
    _log.info("stopped")


def rate_limit(burst: int, per_second: float) -> Limit | None:
    """The default per-key rate limit, None when turned off (rate 0)."""
    if per_second == 0:
        return None
    return Limit(burst, per_second)


async def _serve_until_signal(
    server: ExecutionServer,
    settings: ServeSettings,
    listening: dict[str, str],
    certificate: ServerCertificate | None,
    worker: Worker | None,
) -> None:
    # Handlers first: a SIGTERM sent as soon as the ready file or the log line appears
    # must drain the server, not kill the process.
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    port = await server.start(settings.listen, certificate)
    host = settings.listen.rsplit(":", 1)[0]
    if worker is None:  # a supervisor writes the ready file of its workers
        write_ready_file(settings.ready_file, {**listening, GRPC: address(host.strip("[]"), port)})
    _log.info(
        "execgate service listening on %s:%d (%s), event loop %s",
        host,
        port,
        _transport(settings.tls),
        type(loop).__module__,
    )
    if worker is not None:
        worker.mark_ready()
    await stopping.wait()
    _log.info("shutting down (grace %.1f s)", settings.grace_seconds)
    await server.stop(grace_seconds=settings.grace_seconds, drain_seconds=settings.drain_seconds)


def _transport(tls: ServerTlsFiles) -> str:
    if not tls.enabled:
        return "plaintext"
    return "mutual TLS" if tls.client_ca_file else "TLS"
