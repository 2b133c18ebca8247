"""`python -m gateway serve` (console script `execgate-gateway`): run the REST gateway.

Every setting is a flag and an environment variable `EXECGATE_GATEWAY_<NAME>`;
a flag wins over the variable, the variable over the default.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from gateway.access_log import configure_logging
from gateway.app import LIFECYCLE, build_app, start_site
from gateway.config import DEFAULT_SERVICES, ConfigError, GatewayConfig, parse_listen
from gateway.openapi.routes import openapi_routes
from runtime.allocator import keep_large_buffers_on_heap, use_one_arena

LOGGER: Final = logging.getLogger("execgate.gateway")
ENV_PREFIX: Final = "EXECGATE_GATEWAY_"
_DEFAULTS: Final = GatewayConfig()


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its flag, its environment variable, how to parse it, its default."""

    name: str  # flag without dashes, with `-`; the env var is its upper-case `_` form
    parse: Callable[[str], Any]
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


def _services(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ValueError("expected true or false")
    return lowered in ("true", "1", "yes", "on")


def _event_loop(value: str) -> str:
    if value not in ("auto", "uvloop", "asyncio"):
        raise ValueError("expected auto, uvloop or asyncio")
    return value


OPTIONS: Final = (
    Option("listen", str, f"{_DEFAULTS.host}:{_DEFAULTS.port}", "address to listen on, host:port"),
    Option(
        "backend",
        str,
        _DEFAULTS.backend,
        "gRPC backend: host:port, a comma-separated list of them, or a target such as "
        "dns:///service:50051 (calls are spread round-robin, UNAVAILABLE is retried)",
    ),
    Option(
        "services",
        _services,
        ",".join(DEFAULT_SERVICES),
        "comma-separated full names of the gRPC services exposed over REST",
    ),
    Option("default-timeout", float, _DEFAULTS.default_timeout_s, "upstream deadline in seconds"),
    Option(
        "max-timeout",
        float,
        _DEFAULTS.max_timeout_s,
        "upper bound in seconds of a client's X-Request-Timeout",
    ),
    Option(
        "stream-timeout",
        float,
        _DEFAULTS.stream_timeout_s,
        "upstream deadline in seconds of a streaming call (SSE, NDJSON); also the most a "
        "client's X-Request-Timeout may ask for on one",
    ),
    Option(
        "stream-heartbeat",
        float,
        _DEFAULTS.stream_heartbeat_s,
        "seconds between heartbeats on a quiet stream, so proxies keep it open",
    ),
    Option(
        "max-streams-per-key",
        int,
        _DEFAULTS.max_streams_per_key,
        "streams open at once per API key (Authorization header); more answer 429",
    ),
    Option("max-body-bytes", int, _DEFAULTS.max_body_bytes, "largest request body (else 413)"),
    Option(
        "max-line-size",
        int,
        _DEFAULTS.max_line_size,
        "longest request line (method, URL) or header line in bytes",
    ),
    Option("max-field-size", int, _DEFAULTS.max_field_size, "longest header field in bytes"),
    Option("max-headers", int, _DEFAULTS.max_headers, "most request headers"),
    Option(
        "max-message-bytes",
        int,
        _DEFAULTS.max_message_bytes,
        "largest gRPC message sent or received",
    ),
    Option(
        "keepalive-time-ms",
        int,
        _DEFAULTS.keepalive_time_ms,
        "gRPC keepalive ping interval; not below the service's minimum (10000)",
    ),
    Option(
        "keepalive-timeout-ms", int, _DEFAULTS.keepalive_timeout_ms, "gRPC keepalive ping timeout"
    ),
    Option(
        "retry-after", int, _DEFAULTS.retry_after_s, "Retry-After seconds sent with 503 answers"
    ),
    Option(
        "ready-timeout", float, _DEFAULTS.ready_timeout_s, "deadline of the /readyz health check"
    ),
    Option(
        "gzip-min-bytes",
        int,
        _DEFAULTS.gzip_min_bytes,
        "smallest response body gzip-compressed for clients that accept it",
    ),
    Option(
        "drain",
        float,
        _DEFAULTS.drain_s,
        "seconds after SIGTERM during which /readyz answers 503 but requests are still served",
    ),
    Option(
        "shutdown-timeout",
        float,
        _DEFAULTS.shutdown_timeout_s,
        "seconds in-flight requests get to finish after SIGTERM",
    ),
    Option("log-level", str, _DEFAULTS.log_level, "DEBUG, INFO, WARNING or ERROR"),
    Option(
        "access-log",
        _flag,
        _DEFAULTS.access_log,
        "one JSON line per request on stderr (true or false)",
    ),
    Option(
        "event-loop",
        _event_loop,
        "auto",
        "auto (uvloop when installed), uvloop or asyncio",
    ),
)


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="execgate-gateway",
        description="execgate REST gateway: REST/JSON in front of the execgate gRPC service.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the gateway until SIGTERM or SIGINT",
        description="Run the REST gateway. Every flag can also be set with the environment "
        f"variable shown in brackets ({ENV_PREFIX}<FLAG>); a flag wins over the variable.",
    )
    add_options(parser, serve, OPTIONS, environ)
    return parser


def add_options(
    parser: argparse.ArgumentParser,
    command: argparse.ArgumentParser,
    options: Iterable[Option],
    environ: Mapping[str, str],
) -> None:
    """`options` as flags of `command`, each defaulting to its environment variable.

    A variable that does not parse stops `parser` with an error naming it.
    """
    for option in options:
        default = option.default
        raw = environ.get(option.env)
        if raw is not None:
            try:
                default = option.parse(raw)
            except ValueError as error:
                parser.error(f"{option.env}={raw!r}: {error}")
        command.add_argument(
            option.flag,
            dest=option.dest,
            type=option.parse,
            default=default,
            help=f"{option.help} [{option.env}] (default: %(default)s)",
        )


def config_from_args(args: argparse.Namespace) -> GatewayConfig:
    host, port = parse_listen(args.listen)
    return GatewayConfig(
        host=host,
        port=port,
        backend=args.backend,
        services=args.services,
        default_timeout_s=args.default_timeout,
        max_timeout_s=args.max_timeout,
        stream_timeout_s=args.stream_timeout,
        stream_heartbeat_s=args.stream_heartbeat,
        max_streams_per_key=args.max_streams_per_key,
        max_body_bytes=args.max_body_bytes,
        max_line_size=args.max_line_size,
        max_field_size=args.max_field_size,
        max_headers=args.max_headers,
        max_message_bytes=args.max_message_bytes,
        keepalive_time_ms=args.keepalive_time_ms,
        keepalive_timeout_ms=args.keepalive_timeout_ms,
        retry_after_s=args.retry_after,
        ready_timeout_s=args.ready_timeout,
        gzip_min_bytes=args.gzip_min_bytes,
        drain_s=args.drain,
        shutdown_timeout_s=args.shutdown_timeout,
        log_level=args.log_level,
        access_log=args.access_log,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser(os.environ)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as error:
        parser.error(str(error))
    configure_logging(config.log_level)
    sys.exit(run_server(args.event_loop, lambda: serve(config)))


def run_server(event_loop: str, serving: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run `serving()` to its exit status on the chosen event loop, with the allocator
    set for a process that answers large REST responses (the gateway, single-process mode)."""
    # Large responses (a 1,000-document execution is ~340 KB) without page faults per call.
    keep_large_buffers_on_heap()
    use_one_arena()  # buffers cross threads (gRPC poller, event loop): one arena, one free heap
    with asyncio.Runner(loop_factory=event_loop_factory(event_loop)) as runner:
        return runner.run(serving())


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("--event-loop uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


async def serve(config: GatewayConfig) -> int:
    """Serve until SIGTERM/SIGINT, then shut down gracefully; returns the exit status.

    Shutdown: /readyz turns 503 (for `drain_s` while still serving), the
    listening socket closes, idle keep-alive connections close, in-flight
    requests get `shutdown_timeout_s` to finish, then the upstream channel closes.
    """
    # A bad google.api.http rule stops here, naming the method.
    app = build_app(config, docs_routes=openapi_routes())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner: web.AppRunner | None = None
    try:
        runner, port = await start_site(app, config)
        LOGGER.info(
            "gateway listening on http://%s:%d, backend %s, event loop %s",
            config.host,
            port,
            config.grpc_target,
            type(loop).__module__,
        )
        await stop.wait()
        app[LIFECYCLE].draining = True
        if config.drain_s > 0:
            LOGGER.info("draining: /readyz answers 503 for %.1f s", config.drain_s)
            await asyncio.sleep(config.drain_s)
        LOGGER.info("shutting down: finishing in-flight requests")
    finally:
        if runner is not None:
            await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    LOGGER.info("gateway stopped")
    return 0
