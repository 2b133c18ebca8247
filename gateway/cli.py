"""`python -m gateway serve` (console script `execgate-gateway`): run the REST gateway.

Every setting is a flag and an environment variable `EXECGATE_GATEWAY_<NAME>`;
a flag wins over the variable, the variable over the default (`runtime.settings`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Final

from gateway.app import (
    LIFECYCLE,
    build_app,
    share_metrics_with_workers,
)
from gateway.config import GatewayConfig, parse_listen
from gateway.listening import listening
from gateway.openapi.routes import openapi_routes
from observability.log_format import configure_logging
from runtime.allocator import keep_large_buffers_on_heap, use_one_arena
from runtime.cpus import WORKERS_HELP, parse_workers
from runtime.ready_file import ADMIN, HTTP, write_ready_file
from runtime.settings import (
    Setting,
    add_settings,
    boolean,
    choice,
    comma_list,
    command_parser,
    fail,
    field_values,
    integer,
    log_level,
    number,
    positive_count,
    positive_seconds,
    seconds,
    text,
)
from runtime.supervisor import SharedPort, run_workers
from runtime.tls import ServerCertificate, checking_certificates, server_check
from runtime.worker import Worker, current_worker

LOGGER: Final = logging.getLogger("execgate.gateway")
ENV_PREFIX: Final = "EXECGATE_GATEWAY_"
_DEFAULTS: Final = GatewayConfig()
# A supervisor's workers get their drain and shutdown time plus this before SIGKILL.
STOP_MARGIN_S: Final = 10.0


def _option(
    field: str,
    flag: str,
    parse: Callable[[str], Any],
    help: str,
    metavar: str | None = None,
    former: Sequence[str] = (),
) -> Setting[Any]:
    """A gateway setting filling `GatewayConfig.field`, variable `EXECGATE_GATEWAY_<FLAG>`;
    `former`: its flags before they named their unit (still accepted, as their variables)."""
    return Setting.of(
        GatewayConfig, field, flag, parse, help, env=ENV_PREFIX, metavar=metavar, former=former
    )


def _services(value: str) -> tuple[str, ...]:
    services = comma_list(value)
    if not services:
        raise ValueError("expected at least one full service name")
    return services


# Fills GatewayConfig.host and .port.
LISTEN: Final = Setting(
    "--listen",
    ENV_PREFIX + "LISTEN",
    parse_listen,
    (_DEFAULTS.host, _DEFAULTS.port),
    "address to listen on (port 0: any free port)",
    "HOST:PORT",
)
EVENT_LOOP: Final = Setting(
    "--event-loop",
    ENV_PREFIX + "EVENT_LOOP",
    choice("auto", "uvloop", "asyncio"),
    "auto",
    "auto (uvloop when installed), uvloop or asyncio",
)
# The channel to the service (not in single-process mode, which has no channel).
BACKEND_TLS_OPTIONS: Final[tuple[Setting[Any], ...]] = (
    _option(
        "backend_tls",
        "--backend-tls",
        boolean,
        "call the backend over TLS, verified with the system's CAs unless "
        "--backend-tls-ca-file is given",
    ),
    _option(
        "backend_tls_ca_file",
        "--backend-tls-ca-file",
        text,
        "verify the backend's certificate with the CAs in this PEM file (turns TLS on)",
        "PATH",
    ),
    _option(
        "backend_tls_cert_file",
        "--backend-tls-cert-file",
        text,
        "mutual TLS: the PEM certificate presented to the backend (turns TLS on)",
        "PATH",
    ),
    _option(
        "backend_tls_key_file",
        "--backend-tls-key-file",
        text,
        "the PEM key of --backend-tls-cert-file",
        "PATH",
    ),
    _option(
        "backend_tls_server_name",
        "--backend-tls-server-name",
        text,
        "the name the backend's certificate must carry, when not the target's host",
        "NAME",
    ),
)
OPTIONS: Final[tuple[Setting[Any], ...]] = (
    LISTEN,
    _option(
        "backend",
        "--backend",
        text,
        "gRPC backend: host:port, a comma-separated list of them, or a target such as "
        "dns:///service:50051 (calls are spread round-robin, UNAVAILABLE is retried)",
        "TARGET",
    ),
    _option(
        "services",
        "--services",
        _services,
        "comma-separated full names of the gRPC services exposed over REST",
        "NAMES",
    ),
    _option(
        "default_timeout_s",
        "--default-timeout-seconds",
        seconds,
        "upstream deadline when the client sends no X-Request-Timeout",
        former=("--default-timeout",),
    ),
    _option(
        "max_timeout_s",
        "--max-timeout-seconds",
        seconds,
        "upper bound of a client's X-Request-Timeout",
        former=("--max-timeout",),
    ),
    _option(
        "stream_timeout_s",
        "--stream-timeout-seconds",
        positive_seconds,
        "upstream deadline of a streaming call (SSE, NDJSON); also the most a client's "
        "X-Request-Timeout may ask for on one",
    ),
    _option(
        "stream_heartbeat_s",
        "--stream-heartbeat-seconds",
        positive_seconds,
        "time between heartbeats on a quiet stream, so that proxies keep it open",
    ),
    _option(
        "max_streams_per_key",
        "--max-streams-per-key",
        integer,
        "streams open at once per API key (Authorization header); more answer 429",
    ),
    _option("max_body_bytes", "--max-body-bytes", integer, "largest request body (else 413)"),
    _option(
        "max_line_size",
        "--max-line-bytes",
        integer,
        "longest request line (method, URL) or header line",
        former=("--max-line-size",),
    ),
    _option(
        "max_field_size",
        "--max-field-bytes",
        integer,
        "longest header field",
        former=("--max-field-size",),
    ),
    _option("max_headers", "--max-headers", integer, "most request headers"),
    _option(
        "header_timeout_s",
        "--header-timeout-seconds",
        positive_seconds,
        "seconds a client has to send a request head (else 408, connection closed)",
    ),
    _option(
        "body_timeout_s",
        "--body-timeout-seconds",
        positive_seconds,
        "seconds a client has to send a request body (else 408, connection closed)",
    ),
    _option(
        "keepalive_timeout_s",
        "--keepalive-timeout-seconds",
        positive_seconds,
        "seconds an idle keep-alive connection stays open",
    ),
    _option(
        "send_timeout_s",
        "--send-timeout-seconds",
        positive_seconds,
        "seconds a response may wait for a client that reads nothing (then disconnected)",
    ),
    _option(
        "write_buffer_bytes",
        "--write-buffer-bytes",
        integer,
        "per-connection write buffer above which writing waits for the client",
    ),
    _option("max_connections", "--max-connections", integer, "most open connections (else 503)"),
    _option(
        "max_connections_per_client",
        "--max-connections-per-client",
        integer,
        "most open connections from one client address (else 503)",
    ),
    _option(
        "max_in_flight",
        "--max-in-flight",
        positive_count,
        "API requests get 503 overloaded at once while more requests than this are being "
        "answered per process, counting every kind on the main listener (health, metrics, "
        "docs, UI) except open event streams",
    ),
    _option(
        "auth_failure_burst",
        "--auth-failure-burst",
        integer,
        "401 answers a client address may get in a burst before 429",
    ),
    _option(
        "auth_failure_rate",
        "--auth-failures-per-second",
        number,
        "401 answers per second a client address earns back",
    ),
    _option(
        "max_message_bytes",
        "--max-message-bytes",
        integer,
        "largest gRPC message sent or received",
    ),
    _option(
        "keepalive_time_ms",
        "--keepalive-time-ms",
        integer,
        "gRPC keepalive ping interval; not below the service's minimum (10000)",
    ),
    _option(
        "keepalive_timeout_ms", "--keepalive-timeout-ms", integer, "gRPC keepalive ping timeout"
    ),
    _option(
        "retry_after_s",
        "--retry-after-seconds",
        integer,
        "Retry-After sent with 503 answers",
        former=("--retry-after",),
    ),
    _option(
        "ready_timeout_s",
        "--ready-timeout-seconds",
        seconds,
        "deadline of the /readyz health check",
        former=("--ready-timeout",),
    ),
    _option(
        "gzip_min_bytes",
        "--gzip-min-bytes",
        integer,
        "smallest response body gzip-compressed for clients that accept it",
    ),
    _option(
        "drain_s",
        "--drain-seconds",
        seconds,
        "after SIGTERM, how long /readyz answers 503 while requests are still served",
        former=("--drain",),
    ),
    _option(
        "shutdown_timeout_s",
        "--shutdown-timeout-seconds",
        seconds,
        "after SIGTERM (and the drain), how long in-flight requests get to finish",
        former=("--shutdown-timeout",),
    ),
    _option("log_level", "--log-level", log_level, "DEBUG, INFO, WARNING or ERROR (any case)"),
    _option("access_log", "--access-log", boolean, "one JSON line per request on stderr"),
    _option("ui", "--ui", boolean, "serve the execution viewer, a web page, under /ui/"),
    EVENT_LOOP,
    _option(
        "tls_cert_file",
        "--tls-cert-file",
        text,
        "serve HTTPS with this PEM certificate (chain); reloaded when it changes or on SIGHUP",
        "PATH",
    ),
    _option("tls_key_file", "--tls-key-file", text, "the certificate's PEM key", "PATH"),
    _option(
        "tls_client_ca_file",
        "--tls-client-ca-file",
        text,
        "mutual TLS: clients must present a certificate signed by a CA in this PEM file",
        "PATH",
    ),
    _option(
        "tls_reload_s",
        "--tls-reload-seconds",
        seconds,
        "how often changed certificate files are noticed (SIGHUP: at once); 0: SIGHUP only",
    ),
    *BACKEND_TLS_OPTIONS,
    _option(
        "admin_listen",
        "--admin-listen",
        text,
        "serve /metrics, /openapi.json and /docs on this second, plain-HTTP address instead "
        "of the main listener (e.g. 127.0.0.1:9465)",
        "HOST:PORT",
    ),
    _option(
        "cors_allow_origins",
        "--cors-allow-origins",
        comma_list,
        "CORS: comma-separated origins (scheme://host[:port]) browsers may call from, "
        "or * for any; empty: CORS off",
        "ORIGINS",
    ),
    _option(
        "cors_allow_credentials",
        "--cors-allow-credentials",
        boolean,
        "CORS: let those origins send credentials (cookies, client certificates); not with *",
    ),
    _option(
        "cors_max_age_s",
        "--cors-max-age-seconds",
        integer,
        "CORS: how long a browser may cache a preflight's answer",
    ),
    _option("workers", "--workers", parse_workers, WORKERS_HELP, "N|auto"),
    _option(
        "ready_file",
        "--ready-file",
        text,
        "once listening, write {pid, http[, admin]: HOST:PORT} here as JSON (for launchers)",
        "PATH",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    return command_parser(
        "execgate-gateway",
        "execgate REST gateway: REST/JSON in front of the execgate gRPC service.",
        add_serve_command,
    )


def add_serve_command(commands: Any, name: str = "serve") -> argparse.ArgumentParser:
    """The gateway's `serve` as a subcommand of `commands` (also `execgate gateway`)."""
    serve: argparse.ArgumentParser = commands.add_parser(
        name,
        help="run the REST gateway alone until SIGTERM or Ctrl-C",
        description="Run the REST gateway. Every flag can also be set with the environment "
        f"variable shown in brackets ({ENV_PREFIX}<FLAG>); a flag wins over the variable.",
    )
    add_settings(serve, OPTIONS)
    serve.set_defaults(run=run_command, prog=serve.prog)
    return serve


def config_from_args(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    options: Iterable[Setting[Any]] = OPTIONS,
    **overrides: Any,
) -> GatewayConfig:
    """The GatewayConfig of `options` (flags, then environment); raises ValueError."""
    host, port = LISTEN.value(args, environ)
    fields = field_values(args, options, environ)
    return GatewayConfig(host=host, port=port, **{**fields, **overrides})


def run_command(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args, os.environ)
        event_loop = EVENT_LOOP.value(args, os.environ)
    except ValueError as error:  # SettingError names the flag; ConfigError the setting
        fail(str(error), args.prog)
    configure_logging(config.log_level)
    worker = current_worker()
    if worker is None and config.workers > 1:
        ports = [SharedPort("--listen", config.host, config.port, HTTP)]
        if config.admin_listen:  # every worker answers for all of them there too
            ports.append(SharedPort("--admin-listen", *parse_listen(config.admin_listen), ADMIN))
        return run_workers(
            config.workers,
            ports,
            stop_timeout_s=config.drain_s + config.shutdown_timeout_s + STOP_MARGIN_S,
            ready_file=config.ready_file,
        )
    if worker is not None:
        worker.stop_with_supervisor()
    return run_server(event_loop, lambda: serve(config, worker))


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))


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


async def serve(config: GatewayConfig, worker: Worker | None = None) -> int:
    """Serve until SIGTERM/SIGINT, then shut down gracefully; returns the exit status.

    Shutdown: /readyz turns 503 (for `drain_s` while still serving), the
    listening socket closes, idle keep-alive connections close, in-flight
    requests get `shutdown_timeout_s` to finish, then the upstream channel closes.
    """
    # A bad google.api.http rule stops here, naming the method.
    docs_routes = openapi_routes()
    app = build_app(config, docs_routes=docs_routes)
    if worker is not None:  # one of several: /metrics answers for all of them
        share_metrics_with_workers(app, worker)
    # A bad certificate file stops start-up here, named.
    certificate = ServerCertificate(config.tls) if config.tls.enabled else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    checks = [server_check(certificate)] if certificate is not None else []
    try:
        async with listening(app, config, certificate, docs_routes, worker) as sites:
            if ADMIN in sites.addresses:
                LOGGER.info("metrics and docs on http://%s", sites.addresses[ADMIN])
            if worker is None:  # a supervisor writes the ready file of its workers
                write_ready_file(config.ready_file, sites.addresses)
            LOGGER.info(
                "gateway listening on %s://%s:%d, backend %s%s, event loop %s",
                "https" if certificate else "http",
                config.host,
                sites.port,
                config.grpc_target,
                " over TLS" if config.backend_tls_files.enabled else "",
                type(loop).__module__,
            )
            if worker is not None:
                worker.mark_ready()
            async with checking_certificates(checks, config.tls_reload_s):
                await stop.wait()
            app[LIFECYCLE].draining = True
            if config.drain_s > 0:
                LOGGER.info("draining: /readyz answers 503 for %.1f s", config.drain_s)
                await asyncio.sleep(config.drain_s)
            LOGGER.info("shutting down: finishing in-flight requests")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    LOGGER.info("gateway stopped")
    return 0
