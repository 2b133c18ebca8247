"""Command line: `python -m service serve | admin … | demo | cluster` (console scripts too).

Every option can also be set by an environment variable (named in `--help`);
a flag on the command line wins over the environment (`runtime.settings`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from observability.log_format import configure_logging
from observability.redaction import redact
from runtime.allocator import keep_large_buffers_on_heap
from runtime.cpus import WORKERS_HELP, parse_workers
from runtime.ready_file import GRPC
from runtime.settings import (
    CommandParser,
    Setting,
    SettingError,
    add_settings,
    boolean,
    command_parser,
    fail,
    field_values,
    integer,
    log_level,
    non_negative_number,
    number,
    positive_count,
    positive_seconds,
    seconds,
    text,
)
from runtime.supervisor import SharedPort, run_workers
from runtime.token_bucket import Limit
from runtime.worker import current_worker
from service import admin, cluster, demo, demo_drive
from service.metrics_endpoint import metrics_ports
from service.server import ServeSettings, serve
from service.store import open_store
from service.store.protocol import Store, StoreError

DEFAULTS = ServeSettings()
ENV_PREFIX = "EXECGATE_"
# A supervisor's workers get their drain and grace time plus this before SIGKILL.
STOP_MARGIN_S = 10.0


def _positive_count(raw: str) -> int:
    value = integer(raw)
    if not 1 <= value <= 1_000_000:
        raise ValueError("expected 1 to 1000000")
    return value


def _serve_option(
    field: str, flag: str, parse: Callable[[str], Any], help: str, metavar: str | None = None
) -> Setting[Any]:
    """A `serve` setting filling `ServeSettings.field`, variable `EXECGATE_<FLAG>`."""
    return Setting.of(ServeSettings, field, flag, parse, help, env=ENV_PREFIX, metavar=metavar)


STORE = Setting(
    "--store",
    "EXECGATE_STORE",
    text,
    DEFAULTS.store_url,
    "store URL: sqlite:///relative/file.db, sqlite:////absolute/file.db or "
    "postgresql://user@host/db",
    "URL",
    field="store_url",
    secret=True,
)
SERVE_OPTIONS: tuple[Setting[Any], ...] = (
    _serve_option(
        "listen", "--listen", text, "address to listen on (port 0: any free port)", "HOST:PORT"
    ),
    STORE,
    _serve_option(
        "grace_seconds",
        "--grace-seconds",
        seconds,
        "on shutdown, how long in-flight calls may take to finish",
    ),
    _serve_option(
        "drain_seconds",
        "--drain-seconds",
        seconds,
        "on shutdown, how long to keep serving while health reports NOT_SERVING",
    ),
    _serve_option(
        "cache_seconds",
        "--cache-seconds",
        seconds,
        "how long API keys, namespace and retriever names are cached in memory; 0 disables",
    ),
    _serve_option(
        "store_check_seconds",
        "--store-check-seconds",
        seconds,
        "how often the store is checked; health is NOT_SERVING while it fails; 0 disables",
    ),
    _serve_option(
        "metrics_listen",
        "--metrics-listen",
        text,
        "serve Prometheus metrics over HTTP (GET /metrics) on this address, e.g. "
        "127.0.0.1:9464; 0 or empty: no metrics endpoint",
        "HOST:PORT",
    ),
    _serve_option(
        "max_in_flight",
        "--max-in-flight",
        positive_count,
        "most calls handled at once; beyond, RESOURCE_EXHAUSTED OVERLOADED (gateway: 503)",
    ),
    _serve_option(
        "rate_limit_burst",
        "--rate-limit-burst",
        positive_count,
        "requests an API key may make in a burst (per process), unless the key has its own",
    ),
    _serve_option(
        "rate_limit_rate",
        "--rate-limit-per-second",
        non_negative_number,
        "requests per second an API key earns back (per process); 0: no rate limit",
    ),
    _serve_option("access_log", "--access-log", boolean, "one JSON line per RPC on stderr"),
    _serve_option("uvloop", "--uvloop", boolean, "run on uvloop"),
    _serve_option(
        "log_level", "--log-level", log_level, "DEBUG, INFO, WARNING or ERROR (any case)"
    ),
    _serve_option("workers", "--workers", parse_workers, WORKERS_HELP, "N|auto"),
    _serve_option(
        "watch_keepalive_seconds",
        "--watch-keepalive-seconds",
        seconds,
        "WatchExecution: a heartbeat event after this long without an event; 0: none",
    ),
    _serve_option(
        "watch_max_seconds",
        "--watch-max-seconds",
        seconds,
        "WatchExecution: a stream ends after this long with UNAVAILABLE, resumable with "
        "last_event_id; 0: no limit",
    ),
    _serve_option(
        "watch_poll_seconds",
        "--watch-poll-seconds",
        positive_seconds,
        "WatchExecution on SQLite: how often this process checks the file for commits of "
        "other processes",
    ),
    _serve_option(
        "max_watchers",
        "--max-watchers",
        _positive_count,
        "WatchExecution: concurrent streams per process; more are RESOURCE_EXHAUSTED",
    ),
    _serve_option(
        "tls_cert_file",
        "--tls-cert-file",
        text,
        "serve gRPC over TLS with this PEM certificate (chain); reloaded when the file "
        "changes or on SIGHUP",
        "PATH",
    ),
    _serve_option("tls_key_file", "--tls-key-file", text, "the certificate's PEM key", "PATH"),
    _serve_option(
        "tls_client_ca_file",
        "--tls-client-ca-file",
        text,
        "mutual TLS: clients must present a certificate signed by a CA in this PEM file",
        "PATH",
    ),
    _serve_option(
        "ready_file",
        "--ready-file",
        text,
        "once listening, write {pid, grpc, metrics: HOST:PORT} here as JSON (for launchers)",
        "PATH",
    ),
)
DEMO_KEY_FILE = Setting(
    "--key-file",
    "EXECGATE_DEMO_KEY_FILE",
    Path,
    None,
    "where the demo API key is kept between runs (default: next to the SQLite file, "
    "else var/demo-api-key)",
    "PATH",
)


DRIVE_INTERVAL = Setting(
    "--interval-seconds",
    "EXECGATE_DEMO_DRIVE_INTERVAL_SECONDS",
    seconds,
    1.0,
    "pause before each step of `demo drive`",
    "SECONDS",
    former=(("--interval", "EXECGATE_DEMO_DRIVE_INTERVAL"),),  # its name before units
)


def add_serve_command(commands: Any, name: str = "serve") -> None:
    parser = commands.add_parser(
        name,
        help="run the gRPC service alone until SIGTERM or Ctrl-C",
        description="Run the gRPC service. Every flag can also be set with the environment "
        "variable shown in brackets; a flag wins over the variable.",
    )
    add_settings(parser, SERVE_OPTIONS)
    parser.set_defaults(run=_run_serve, prog=parser.prog)


def _positive_number(raw: str) -> float:
    value = number(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a number above 0")
    return value


def _burst_argument(raw: str) -> int:
    """`_positive_count` (Postgres keeps it in an int32) for argparse, which would show a
    ValueError as "invalid _positive_count value" without its reason."""
    try:
        return _positive_count(raw)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_admin_commands(parser: argparse.ArgumentParser) -> None:
    """The admin commands; `--store` goes before or after the command name."""
    add_settings(parser, (STORE,))
    commands = parser.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    create_namespace = commands.add_parser("create-namespace", help="create a namespace")
    create_namespace.add_argument("name")
    create_namespace.set_defaults(action=_create_namespace)

    create_retriever = commands.add_parser("create-retriever", help="create a retriever")
    create_retriever.add_argument("--namespace", required=True, help="namespace ID or name")
    create_retriever.add_argument("name")
    create_retriever.set_defaults(action=_create_retriever)

    create_key = commands.add_parser(
        "create-key", help="create an API key and print its secret (shown only this once)"
    )
    create_key.add_argument(
        "--namespace",
        action="append",
        required=True,
        help="namespace ID or name the key may act in (repeat for several)",
    )
    create_key.add_argument(
        "--permission",
        action="append",
        required=True,
        choices=admin.PERMISSIONS,
        help="read and/or write (repeat for both)",
    )
    create_key.add_argument(
        "--rate-per-second",
        type=_positive_number,
        help="this key's rate limit: requests per second earned back (default: the "
        "service's --rate-limit-per-second)",
    )
    create_key.add_argument(
        "--burst",
        type=_burst_argument,
        help="this key's burst (with --rate-per-second; default: 2 seconds' worth of it)",
    )
    create_key.set_defaults(action=_create_key)

    list_namespaces = commands.add_parser("list-namespaces", help="list namespaces as JSON")
    list_namespaces.set_defaults(action=_list_namespaces)

    list_retrievers = commands.add_parser(
        "show-retriever", help="show one retriever (by ID or name) of a namespace as JSON"
    )
    list_retrievers.add_argument("--namespace", required=True, help="namespace ID or name")
    list_retrievers.add_argument("retriever", help="retriever ID or name")
    list_retrievers.set_defaults(action=_show_retriever)
    for command in commands.choices.values():
        add_settings(command, (STORE,))


def add_admin_command(commands: Any, name: str = "admin") -> None:
    parser = commands.add_parser(name, help="manage namespaces, retrievers and API keys")
    _add_admin_commands(parser)
    parser.set_defaults(run=_run_admin, prog=parser.prog)


def add_demo_command(commands: Any, name: str = "demo") -> None:
    parser = commands.add_parser(
        name, help="seed (idempotently) a demo namespace, retriever, key and executions"
    )
    add_settings(parser, (STORE, DEMO_KEY_FILE))
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the result as JSON")
    output.add_argument(
        "--shell",
        action="store_true",
        help="print `export NAME=value` lines for the README's examples: "
        'eval "$(python -m service demo --shell)"',
    )
    parser.set_defaults(run=_run_demo, prog=parser.prog)
    drive = parser.add_subparsers(dest="demo_command", metavar="COMMAND").add_parser(
        "drive",
        help="drive a demo execution forward to completed, one step per interval, "
        "for watching it live (WatchExecution)",
    )
    add_settings(drive, (STORE, DEMO_KEY_FILE, DRIVE_INTERVAL))
    drive.add_argument(
        "--execution",
        choices=("processing", "pending", "new"),
        default="processing",
        help="the seeded processing or pending execution, or a new one (its ID is printed "
        "first) (default: %(default)s)",
    )
    drive.set_defaults(run=_run_demo_drive, prog=drive.prog)


def _parser() -> argparse.ArgumentParser:
    return command_parser(
        "python -m service",
        "execgate's gRPC execution service",
        add_serve_command,
        add_admin_command,
        add_demo_command,
        cluster.add_command,
    )


def _admin_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="execgate-admin", description="manage namespaces, retrievers and API keys"
    )
    _add_admin_commands(parser)
    parser.set_defaults(run=_run_admin, prog=parser.prog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result: int = args.run(args)
    return result


def admin_main(argv: Sequence[str] | None = None) -> int:
    args = _admin_parser().parse_args(argv)
    result: int = args.run(args)
    return result


def _store_url(args: argparse.Namespace) -> str:
    try:
        return STORE.value(args, os.environ)
    except SettingError as error:
        fail(str(error), args.prog)


# --- commands ---------------------------------------------------------------------


def _run_serve(args: argparse.Namespace) -> int:
    try:
        settings = ServeSettings(**field_values(args, SERVE_OPTIONS, os.environ))
    except ValueError as error:  # SettingError names the flag; TlsConfigError the flags
        fail(str(error), args.prog)
    configure_logging(settings.log_level)
    worker = current_worker()
    if worker is None and settings.workers > 1:
        return _run_workers(settings, args.prog)
    if worker is not None:
        worker.stop_with_supervisor()
    # 1,000-document executions are ~340 KB buffers several times per call.
    keep_large_buffers_on_heap()
    try:
        if settings.uvloop:
            import uvloop

            uvloop.run(serve(settings, worker))
        else:
            asyncio.run(serve(settings, worker))
    except (OSError, StoreError, ValueError) as error:
        logging.getLogger("service").error("cannot serve: %s", error)
        return 1
    return 0


def _run_workers(settings: ServeSettings, prog: str) -> int:
    try:
        ports = [
            SharedPort("--listen", *_host_port(settings.listen), GRPC),
            *metrics_ports(settings.metrics_listen),
        ]
    except ValueError as error:
        fail(str(error), prog)
    return run_workers(
        settings.workers,
        ports,
        ready_file=settings.ready_file,
        stop_timeout_s=settings.drain_seconds + settings.grace_seconds + STOP_MARGIN_S,
    )


def _host_port(listen: str) -> tuple[str, int]:
    host, separator, port = listen.rpartition(":")
    if not separator or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen: expected HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port)


def _run_with_store(url: str, job: Callable[[Store], Awaitable[int]]) -> int:
    # Results go to stdout; what the store logs (migrations, warnings) as JSON lines on stderr.
    configure_logging("WARNING")

    async def run() -> int:
        store = open_store(url)
        await store.open()
        try:
            return await job(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (admin.AdminError, ValueError) as error:
        print(f"error: {redact(str(error))}", file=sys.stderr)
        return 1


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


def _run_admin(args: argparse.Namespace) -> int:
    action: Callable[[Store, argparse.Namespace], Awaitable[int]] = args.action
    return _run_with_store(_store_url(args), lambda store: action(store, args))


async def _create_namespace(store: Store, args: argparse.Namespace) -> int:
    namespace = await admin.create_namespace(store, args.name)
    _print_json({"id": namespace.id, "name": namespace.name})
    return 0


async def _create_retriever(store: Store, args: argparse.Namespace) -> int:
    retriever = await admin.create_retriever(store, args.namespace, args.name)
    _print_json(
        {"id": retriever.id, "name": retriever.name, "namespace_id": retriever.namespace_id}
    )
    return 0


async def _create_key(store: Store, args: argparse.Namespace) -> int:
    rate = args.rate_per_second
    if args.burst is not None and rate is None:
        raise admin.AdminError("--burst needs --rate-per-second")
    limit = None
    if rate is not None:
        limit = Limit(args.burst or max(1, math.ceil(2 * rate)), rate)
    issued = await admin.create_api_key(store, args.namespace, args.permission, limit)
    _print_json(
        {
            "id": issued.key.id,
            "api_key": issued.secret,
            "namespace_ids": list(issued.key.namespace_ids),
            "permissions": sorted(issued.key.permissions),
            "rate_limit": None
            if limit is None
            else {"burst": limit.burst, "per_second": limit.rate},
        }
    )
    print("The API key is shown only this once; store it safely.", file=sys.stderr)
    return 0


async def _list_namespaces(store: Store, args: argparse.Namespace) -> int:
    namespaces = await store.list_namespaces()
    _print_json([{"id": namespace.id, "name": namespace.name} for namespace in namespaces])
    return 0


async def _show_retriever(store: Store, args: argparse.Namespace) -> int:
    namespace = await admin.find_namespace(store, args.namespace)
    retriever = await store.find_retriever(namespace.id, args.retriever)
    if retriever is None:
        raise admin.AdminError(f"no retriever {args.retriever!r} in namespace {namespace.name}")
    _print_json(
        {"id": retriever.id, "name": retriever.name, "namespace_id": retriever.namespace_id}
    )
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    store_url = _store_url(args)
    try:
        chosen: Path | None = DEMO_KEY_FILE.value(args, os.environ)
    except SettingError as error:
        fail(str(error), args.prog)
    key_file = chosen or demo.default_key_file(store_url)

    async def seed(store: Store) -> int:
        data = await demo.seed(store, key_file)
        if args.json:
            _print_json(data.as_json())
        elif args.shell:
            print(demo.shell_exports(data))
        else:
            _print_demo(data)
        return 0

    return _run_with_store(store_url, seed)


def _run_demo_drive(args: argparse.Namespace) -> int:
    store_url = _store_url(args)
    try:
        chosen: Path | None = DEMO_KEY_FILE.value(args, os.environ)
        interval = DRIVE_INTERVAL.value(args, os.environ)
    except SettingError as error:
        fail(str(error), args.prog)
    key_file = chosen or demo.default_key_file(store_url)

    async def run(store: Store) -> int:
        data = await demo.seed(store, key_file)
        await demo_drive.drive(
            store,
            data,
            args.execution,
            interval=interval,
            say=lambda line: print(line, flush=True),
        )
        return 0

    return _run_with_store(store_url, run)


def _print_demo(data: demo.DemoData) -> None:
    print(f"namespace  {data.namespace.name} ({data.namespace.id})")
    print(f"retriever  {data.retriever.name} ({data.retriever.id})")
    print(f"api key    {data.api_key}")
    for name, execution_id in data.executions.items():
        print(f"execution  {name:<15} {execution_id}")
