"""`python -m singleprocess serve`: gateway and service in one process, on one event loop.

REST on `--listen` reaches the service through the in-process channel (no
network hop); the same service is also on real gRPC at `--grpc-listen` (for
writers, grpcurl, reflection, health) unless that is `off`, and its own metrics
(RPCs, store) on `--metrics-listen` when set. The gateway's settings are the
gateway CLI's own flags and `EXECGATE_GATEWAY_*` variables (except `--backend`:
the backend is this process); the service's are a few of `python -m service
serve`'s. This is the deployment for one box (`make run`); the two tiers
(`python -m gateway serve` + `python -m service serve`) scale their halves apart.

SIGTERM/SIGINT: health turns NOT_SERVING and /readyz 503 (for `--drain-seconds`
while still serving), then in-flight REST requests finish
(`--shutdown-timeout-seconds`), then gRPC calls (`--grace-seconds`), then the
store closes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gateway import cli as gateway_cli
from gateway.app import (
    LIFECYCLE,
    build_app,
    share_metrics_with_workers,
)
from gateway.config import GatewayConfig, parse_listen
from gateway.listening import listening
from gateway.openapi.routes import openapi_routes
from observability.log_format import configure_logging
from observability.worker_metrics import WorkerMetricsSharing
from runtime.ready_file import ADMIN, GRPC, HTTP, METRICS, address, write_ready_file
from runtime.settings import (
    Setting,
    add_settings,
    command_parser,
    fail,
    field_values,
    non_negative_number,
    positive_count,
    seconds,
    text,
)
from runtime.supervisor import SharedPort, run_workers
from runtime.tls import ServerCertificate, checking_certificates, server_check
from runtime.worker import Worker, current_worker
from service.access_log import AccessLog as ServiceAccessLog
from service.auth import DEFAULT_CACHE_SECONDS
from service.metrics_endpoint import MetricsEndpoint, metrics_ports, parse_metrics_listen
from service.server import ExecutionServer, ServeSettings, rate_limit
from service.store import open_store
from service.store.protocol import StoreError
from singleprocess.channel import InProcessChannel
from singleprocess.handlers import service_handlers

LOGGER: Final = logging.getLogger("execgate.singleprocess")
OFF: Final = "off"
_SERVICE_DEFAULTS: Final = ServeSettings()
_GATEWAY_DEFAULTS: Final = GatewayConfig()
# Every gateway flag but the backend's, which is this process, and the ready file (its own).
# The listener's TLS flags (--tls-*) serve both the HTTP and the gRPC port.
GATEWAY_OPTIONS: Final = tuple(
    o
    for o in gateway_cli.OPTIONS
    if o.flag not in ("--backend", "--ready-file") and o not in gateway_cli.BACKEND_TLS_OPTIONS
)


@dataclass(frozen=True, slots=True)
class Settings:
    gateway: GatewayConfig = _GATEWAY_DEFAULTS
    grpc_listen: str | None = _SERVICE_DEFAULTS.listen  # None: no gRPC port
    store_url: str = _SERVICE_DEFAULTS.store_url
    grace_seconds: float = _SERVICE_DEFAULTS.grace_seconds
    cache_seconds: float = DEFAULT_CACHE_SECONDS
    # HOST:PORT of the service's Prometheus /metrics (RPC and store metrics), as for
    # `python -m service serve`; "" off. The gateway's /metrics is on --listen.
    metrics_listen: str = _SERVICE_DEFAULTS.metrics_listen
    # Default per-key rate limit, as the service's (`rate_limit_rate` 0: none).
    rate_limit_burst: int = _SERVICE_DEFAULTS.rate_limit_burst
    rate_limit_rate: float = _SERVICE_DEFAULTS.rate_limit_rate
    # Written once listening: pid, http and grpc addresses (runtime/ready_file.py).
    ready_file: str = ""


def _grpc_listen(value: str) -> str | None:
    if value.strip().lower() == OFF:
        return None
    parse_listen(value)  # refuses what is not HOST:PORT
    return value


def _metrics_listen(value: str) -> str:
    parse_metrics_listen(value)  # refuses what is not HOST:PORT, 0 or empty
    return value


# The service's settings, with the service's variable names where it has them.
SERVICE_OPTIONS: Final[tuple[Setting[Any], ...]] = (
    Setting.of(
        Settings,
        "grpc_listen",
        "--grpc-listen",
        _grpc_listen,
        f"the service's gRPC address, or {OFF!r} for REST only",
        env="EXECGATE_",
        metavar="HOST:PORT",
    ),
    Setting.of(
        Settings,
        "store_url",
        "--store",
        text,
        "store URL, as for `python -m service serve`",
        env="EXECGATE_STORE",
        metavar="URL",
        secret=True,
    ),
    Setting.of(
        Settings,
        "grace_seconds",
        "--grace-seconds",
        seconds,
        "on shutdown, how long in-flight gRPC calls may take",
        env="EXECGATE_",
    ),
    Setting.of(
        Settings,
        "cache_seconds",
        "--cache-seconds",
        seconds,
        "how long API keys and names are cached; 0 disables",
        env="EXECGATE_",
    ),
    Setting.of(
        Settings,
        "metrics_listen",
        "--metrics-listen",
        _metrics_listen,
        "the service's Prometheus /metrics (RPCs, store) on its own HOST:PORT; off when empty",
        env="EXECGATE_",
        metavar="HOST:PORT",
    ),
    Setting.of(
        Settings,
        "rate_limit_burst",
        "--rate-limit-burst",
        positive_count,
        "requests an API key may make in a burst, unless the key has its own",
        env="EXECGATE_",
    ),
    Setting.of(
        Settings,
        "rate_limit_rate",
        "--rate-limit-per-second",
        non_negative_number,
        "requests per second an API key earns back; 0: no rate limit",
        env="EXECGATE_",
    ),
    Setting.of(
        Settings,
        "ready_file",
        "--ready-file",
        text,
        "once listening, write {pid, http, grpc: HOST:PORT} here as JSON (for launchers)",
        env="EXECGATE_",
        metavar="PATH",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    return command_parser(
        "python -m singleprocess",
        "execgate's REST gateway and gRPC service in one process.",
        add_serve_command,
    )


def add_serve_command(commands: Any, name: str = "serve") -> argparse.ArgumentParser:
    """Single-process `serve` as a subcommand of `commands` (also `execgate serve`)."""
    serve: argparse.ArgumentParser = commands.add_parser(
        name,
        help="run gateway and service in one process until SIGTERM or Ctrl-C",
        description="Run execgate's REST gateway and gRPC service in one process. Every "
        "flag can also be set with the environment variable shown in brackets; a flag wins.",
    )
    add_settings(serve, SERVICE_OPTIONS)
    add_settings(serve, GATEWAY_OPTIONS)
    serve.set_defaults(run=run_command, prog=serve.prog)
    return serve


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Raises ValueError (naming the flag or variable) on a bad value."""
    service = field_values(args, SERVICE_OPTIONS, environ)
    grpc_listen: str | None = service["grpc_listen"]
    # The gateway config names the gRPC address in its logs; no channel is opened to it.
    gateway = gateway_cli.config_from_args(
        args, environ, GATEWAY_OPTIONS, backend=grpc_listen or "in-process:0"
    )
    return Settings(gateway=gateway, **service)


def run_command(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args, os.environ)
        event_loop = gateway_cli.EVENT_LOOP.value(args, os.environ)
    except ValueError as error:
        fail(str(error), args.prog)
    configure_logging(settings.gateway.log_level)
    worker = current_worker()
    if worker is None and settings.gateway.workers > 1:
        return _run_workers(settings)
    if worker is not None:
        worker.stop_with_supervisor()
    try:
        # As the gateway: its --event-loop choice, its allocator settings.
        return gateway_cli.run_server(event_loop, lambda: serve(settings, worker))
    except (OSError, StoreError, ValueError) as error:
        LOGGER.error("cannot serve: %s", error)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


def _run_workers(settings: Settings) -> int:
    config = settings.gateway
    ports = [SharedPort("--listen", config.host, config.port, HTTP)]
    if settings.grpc_listen is not None:
        ports.append(SharedPort("--grpc-listen", *parse_listen(settings.grpc_listen), GRPC))
    if config.admin_listen:
        ports.append(SharedPort("--admin-listen", *parse_listen(config.admin_listen), ADMIN))
    ports.extend(metrics_ports(settings.metrics_listen))
    return run_workers(
        config.workers,
        ports,
        ready_file=settings.ready_file,
        stop_timeout_s=config.drain_s
        + config.shutdown_timeout_s
        + settings.grace_seconds
        + gateway_cli.STOP_MARGIN_S,
    )


async def serve(settings: Settings, worker: Worker | None = None) -> int:
    config = settings.gateway
    store = open_store(settings.store_url)
    await store.open()
    try:
        # One access line per request: the gateway's for a REST request, the service's for
        # a call on --grpc-listen (it writes none for the gateway's in-process calls).
        service_log = ServiceAccessLog(sys.stderr.buffer if config.access_log else None)
        server = ExecutionServer(
            store,
            cache_seconds=settings.cache_seconds,
            access_log=service_log,
            rate_limit=rate_limit(settings.rate_limit_burst, settings.rate_limit_rate),
            reuse_port=worker is not None,
        )
        handlers = service_handlers(server)
        docs_routes = openapi_routes()
        app = build_app(
            config,
            docs_routes=docs_routes,
            channel_factory=lambda _: InProcessChannel(handlers),
        )
        if worker is not None:  # one of several: /metrics answers for all of them
            share_metrics_with_workers(app, worker)
        # One certificate for both ports (the gateway's --tls-* settings).
        certificate = ServerCertificate(config.tls) if config.tls.enabled else None
        grpc_port = await server.start(settings.grpc_listen, certificate)
        checks = [server_check(certificate)] if certificate is not None else []
        metrics_endpoint: MetricsEndpoint | None = None
        try:
            async with listening(app, config, certificate, docs_routes, worker) as sites:
                addresses = dict(sites.addresses)
                if settings.grpc_listen:
                    addresses[GRPC] = address(
                        settings.grpc_listen.rsplit(":", 1)[0].strip("[]"), grpc_port
                    )
                metrics_address = parse_metrics_listen(settings.metrics_listen)
                if metrics_address is not None:
                    metrics_endpoint = _service_metrics_endpoint(server, worker)
                    metrics_port = await metrics_endpoint.start(*metrics_address)
                    addresses[METRICS] = address(metrics_address[0], metrics_port)
                if worker is None:  # a supervisor writes the ready file of its workers
                    write_ready_file(settings.ready_file, addresses)
                LOGGER.info(
                    "single process: REST on %s://%s:%d, gRPC %s",
                    "https" if certificate else "http",
                    config.host,
                    sites.port,
                    f"on port {grpc_port}" if settings.grpc_listen else "off",
                )
                if worker is not None:
                    worker.mark_ready()
                async with checking_certificates(checks, config.tls_reload_s):
                    await _until_signal()
                app[LIFECYCLE].draining = True
                await server.health.enter_graceful_shutdown()
                if config.drain_s > 0:
                    await asyncio.sleep(config.drain_s)
                # Watch streams (REST and gRPC) end now, resumable, instead of
                # holding the shutdown for the whole grace period.
                await server.watch_hub.close()
                LOGGER.info("shutting down: finishing in-flight requests and calls")
        finally:
            await server.stop(grace_seconds=settings.grace_seconds)
            if metrics_endpoint is not None:
                await metrics_endpoint.stop()
            service_log.flush()
    finally:
        await store.close()
    LOGGER.info("stopped")
    return 0


def _service_metrics_endpoint(server: ExecutionServer, worker: Worker | None) -> MetricsEndpoint:
    """The service's /metrics; with several workers, each scrape merges all of them."""
    if worker is None:
        return MetricsEndpoint(server.metrics)
    sharing = WorkerMetricsSharing(worker, "service", server.metrics.exposition)
    return MetricsEndpoint(server.metrics, sharing)


async def _until_signal() -> None:
    """Until SIGTERM or SIGINT. The handlers stay until the loop closes: a second
    signal during the drain (a supervisor forwarding Ctrl-C) must not end it abruptly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
