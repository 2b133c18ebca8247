"""`python -m singleprocess serve`: gateway and service in one process, on one event loop.

REST on `--listen` reaches the service through the in-process channel (no
network hop); the same service is also on real gRPC at `--grpc-listen` (for
writers, grpcurl, reflection, health) unless that is `off`. The gateway's
settings are the gateway CLI's own flags and `EXECGATE_GATEWAY_*` variables
(except `--backend`: the backend is this process); the service's are a few of
`python -m service serve`'s. The two-process deployment stays the default
(`python -m gateway serve` + `python -m service serve`).

SIGTERM/SIGINT: health turns NOT_SERVING and /readyz 503 (for `--drain`
seconds while still serving), then in-flight REST requests finish
(`--shutdown-timeout`), then gRPC calls (`--grace-seconds`), then the store closes.
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
from typing import Final

from aiohttp import web

from gateway import cli as gateway_cli
from gateway.access_log import configure_logging
from gateway.app import LIFECYCLE, build_app, share_metrics_with_workers, start_site
from gateway.config import ConfigError, GatewayConfig, parse_listen
from gateway.openapi.routes import openapi_routes
from runtime.supervisor import SharedPort, run_workers
from runtime.worker import Worker, current_worker
from service.access_log import AccessLog as ServiceAccessLog
from service.auth import DEFAULT_CACHE_SECONDS
from service.server import ExecutionServer, ServeSettings
from service.store import open_store
from service.store.protocol import StoreError
from singleprocess.channel import InProcessChannel
from singleprocess.handlers import service_handlers

LOGGER: Final = logging.getLogger("execgate.singleprocess")
OFF: Final = "off"
_SERVICE_DEFAULTS: Final = ServeSettings()
# Every gateway flag but the backend, which is this process.
GATEWAY_OPTIONS: Final = tuple(o for o in gateway_cli.OPTIONS if o.name != "backend")


@dataclass(frozen=True, slots=True)
class Settings:
    gateway: GatewayConfig
    grpc_listen: str | None  # None: no gRPC port
    store_url: str
    grace_seconds: float
    cache_seconds: float


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m singleprocess",
        description="execgate's REST gateway and gRPC service in one process.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run until SIGTERM or SIGINT")
    serve.add_argument(
        "--grpc-listen",
        default=_SERVICE_DEFAULTS.listen,
        metavar="HOST:PORT",
        help=f"the service's gRPC address, or {OFF!r} for REST only (default: %(default)s)",
    )
    serve.add_argument(
        "--store",
        default=environ.get("EXECGATE_STORE", _SERVICE_DEFAULTS.store_url),
        metavar="URL",
        help="store URL, as for `python -m service serve` (env EXECGATE_STORE; "
        "default: %(default)s)",
    )
    serve.add_argument(
        "--grace-seconds",
        type=float,
        default=_SERVICE_DEFAULTS.grace_seconds,
        help="on shutdown, how long in-flight gRPC calls may take (default: %(default)s)",
    )
    serve.add_argument(
        "--cache-seconds",
        type=float,
        default=DEFAULT_CACHE_SECONDS,
        help="how long API keys and names are cached; 0 disables (default: %(default)s)",
    )
    gateway_cli.add_options(parser, serve, GATEWAY_OPTIONS, environ)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    grpc_listen = None if args.grpc_listen == OFF else args.grpc_listen
    # The gateway config names the gRPC address in its logs; no channel is opened to it.
    args.backend = grpc_listen or "in-process:0"
    return Settings(
        gateway=gateway_cli.config_from_args(args),
        grpc_listen=grpc_listen,
        store_url=args.store,
        grace_seconds=args.grace_seconds,
        cache_seconds=args.cache_seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(os.environ)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ConfigError as error:
        parser.error(str(error))
    configure_logging(settings.gateway.log_level)
    worker = current_worker()
    if worker is None and settings.gateway.workers > 1:
        try:
            return _run_workers(settings, sys.argv[1:] if argv is None else argv)
        except ConfigError as error:
            parser.error(str(error))
    if worker is not None:
        worker.stop_with_supervisor()
    try:
        # As the gateway: its --event-loop choice, its allocator settings.
        return gateway_cli.run_server(args.event_loop, lambda: serve(settings, worker))
    except (OSError, StoreError, ValueError) as error:
        LOGGER.error("cannot serve: %s", error)
        return 1


def _run_workers(settings: Settings, argv: Sequence[str]) -> int:
    config = settings.gateway
    ports = [SharedPort("--listen", config.host, config.port)]
    if settings.grpc_listen is not None:
        host, port = parse_listen(settings.grpc_listen)
        ports.append(SharedPort("--grpc-listen", host, port))
    return run_workers(
        "singleprocess",
        argv,
        config.workers,
        ports,
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
        # Both access logs: one line per HTTP request, one per RPC, as in two processes.
        service_log = ServiceAccessLog(sys.stderr.buffer if config.access_log else None)
        server = ExecutionServer(
            store,
            cache_seconds=settings.cache_seconds,
            access_log=service_log,
            reuse_port=worker is not None,
        )
        handlers = service_handlers(server)
        app = build_app(
            config,
            docs_routes=openapi_routes(),
            channel_factory=lambda _: InProcessChannel(handlers),
        )
        if worker is not None:
            share_metrics_with_workers(app, worker)
        grpc_port = await server.start(settings.grpc_listen)
        runner: web.AppRunner | None = None
        try:
            runner, port = await start_site(app, config, reuse_port=worker is not None)
            LOGGER.info(
                "single process: REST on http://%s:%d, gRPC %s",
                config.host,
                port,
                f"on port {grpc_port}" if settings.grpc_listen else "off",
            )
            if worker is not None:
                worker.mark_ready()
            await _until_signal()
            app[LIFECYCLE].draining = True
            await server.health.enter_graceful_shutdown()
            if config.drain_s > 0:
                await asyncio.sleep(config.drain_s)
            LOGGER.info("shutting down: finishing in-flight requests and calls")
        finally:
            if runner is not None:
                await runner.cleanup()
            await server.stop(grace_seconds=settings.grace_seconds)
            service_log.flush()
    finally:
        await store.close()
    LOGGER.info("stopped")
    return 0


async def _until_signal() -> None:
    """Until SIGTERM or SIGINT. The handlers stay until the loop closes: a second
    signal during the drain (a supervisor forwarding Ctrl-C) must not end it abruptly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
