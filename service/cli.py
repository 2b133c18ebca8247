"""Command line: `python -m service serve | admin … | demo | cluster` (console scripts too).

Every option can also be set by an environment variable (named in `--help`);
a flag on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from runtime.allocator import keep_large_buffers_on_heap
from runtime.cpus import parse_workers
from runtime.supervisor import SharedPort, run_workers
from runtime.worker import current_worker
from service import admin, cluster, demo
from service.auth import DEFAULT_CACHE_SECONDS
from service.metrics_endpoint import parse_metrics_listen
from service.server import ServeSettings, serve
from service.store import open_store
from service.store.protocol import Store, StoreError

DEFAULTS = ServeSettings()
# A supervisor's workers get their drain and grace time plus this before SIGKILL.
STOP_MARGIN_S = 10.0


def _env(name: str, default: str) -> str:
    return os.environ.get(f"EXECGATE_{name}", default)


def _add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=_env("STORE", DEFAULTS.store_url),
        metavar="URL",
        help="store URL: sqlite:///relative/file.db, sqlite:////absolute/file.db or "
        "postgresql://user@host/db (env EXECGATE_STORE; default %(default)s)",
    )


def _workers(value: str) -> int:
    try:
        return parse_workers(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_serve(commands: Any) -> None:
    parser = commands.add_parser("serve", help="run the gRPC service until SIGTERM/SIGINT")
    parser.add_argument(
        "--listen",
        default=_env("LISTEN", DEFAULTS.listen),
        metavar="HOST:PORT",
        help="address to listen on (env EXECGATE_LISTEN; default %(default)s)",
    )
    _add_store_option(parser)
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=float(_env("GRACE_SECONDS", str(DEFAULTS.grace_seconds))),
        help="on shutdown, how long in-flight calls may take to finish "
        "(env EXECGATE_GRACE_SECONDS; default %(default)s)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=float(_env("DRAIN_SECONDS", str(DEFAULTS.drain_seconds))),
        help="on shutdown, how long to keep serving while health reports NOT_SERVING "
        "(env EXECGATE_DRAIN_SECONDS; default %(default)s)",
    )
    parser.add_argument(
        "--cache-seconds",
        type=float,
        default=float(_env("CACHE_SECONDS", str(DEFAULT_CACHE_SECONDS))),
        help="how long API keys, namespace and retriever names are cached in memory; "
        "0 disables the cache (env EXECGATE_CACHE_SECONDS; default %(default)s)",
    )
    parser.add_argument(
        "--store-check-seconds",
        type=float,
        default=float(_env("STORE_CHECK_SECONDS", str(DEFAULTS.store_check_seconds))),
        help="how often the store is checked; health is NOT_SERVING while it fails; "
        "0 disables (env EXECGATE_STORE_CHECK_SECONDS; default %(default)s)",
    )
    parser.add_argument(
        "--metrics-listen",
        default=_env("METRICS_LISTEN", DEFAULTS.metrics_listen),
        metavar="HOST:PORT",
        help="serve Prometheus metrics over HTTP (GET /metrics) on this address, e.g. "
        "127.0.0.1:9464; 0 or empty: no metrics endpoint "
        "(env EXECGATE_METRICS_LISTEN; default off)",
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=_env("ACCESS_LOG", "1") not in ("0", "false", "no"),
        help="one JSON line per RPC on stderr (env EXECGATE_ACCESS_LOG=0/1; default on)",
    )
    parser.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=_env("UVLOOP", "1") not in ("0", "false", "no"),
        help="run on uvloop (env EXECGATE_UVLOOP=0/1; default on)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=_workers(_env("WORKERS", str(DEFAULTS.workers))),
        help="processes serving the one port, restarted when they die; auto: one per CPU "
        "this process may use (affinity and cgroup quota) (env EXECGATE_WORKERS; "
        "default %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default=_env("LOG_LEVEL", "INFO"),
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="(env EXECGATE_LOG_LEVEL; default %(default)s)",
    )
    parser.set_defaults(run=_run_serve)


def _add_admin_commands(commands: Any) -> None:
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
    create_key.set_defaults(action=_create_key)

    list_namespaces = commands.add_parser("list-namespaces", help="list namespaces as JSON")
    list_namespaces.set_defaults(action=_list_namespaces)

    list_retrievers = commands.add_parser(
        "show-retriever", help="show one retriever (by ID or name) of a namespace as JSON"
    )
    list_retrievers.add_argument("--namespace", required=True, help="namespace ID or name")
    list_retrievers.add_argument("retriever", help="retriever ID or name")
    list_retrievers.set_defaults(action=_show_retriever)


def _add_admin(commands: Any) -> None:
    parser = commands.add_parser("admin", help="manage namespaces, retrievers and API keys")
    _add_store_option(parser)
    _add_admin_commands(parser.add_subparsers(dest="admin_command", required=True))
    parser.set_defaults(run=_run_admin)


def _add_demo(commands: Any) -> None:
    parser = commands.add_parser(
        "demo", help="seed (idempotently) a demo namespace, retriever, key and executions"
    )
    _add_store_option(parser)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the result as JSON")
    output.add_argument(
        "--shell",
        action="store_true",
        help="print `export NAME=value` lines for the README's examples: "
        'eval "$(python -m service demo --shell)"',
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        default=os.environ.get("EXECGATE_DEMO_KEY_FILE"),
        help="where the demo API key is kept between runs (env EXECGATE_DEMO_KEY_FILE; "
        "default: next to the SQLite file, else var/demo-api-key)",
    )
    parser.set_defaults(run=_run_demo)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service", description="execgate's gRPC execution service"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_serve(commands)
    _add_admin(commands)
    _add_demo(commands)
    cluster.add_command(commands)
    return parser


def _admin_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="execgate-admin", description="manage namespaces, retrievers and API keys"
    )
    _add_store_option(parser)
    _add_admin_commands(parser.add_subparsers(dest="admin_command", required=True))
    parser.set_defaults(run=_run_admin)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # a supervisor's workers rerun it
    result: int = args.run(args)
    return result


def admin_main(argv: Sequence[str] | None = None) -> int:
    args = _admin_parser().parse_args(argv)
    result: int = args.run(args)
    return result


# --- commands ---------------------------------------------------------------------


def _run_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = ServeSettings(
        listen=args.listen,
        store_url=args.store,
        grace_seconds=args.grace_seconds,
        drain_seconds=args.drain_seconds,
        cache_seconds=args.cache_seconds,
        store_check_seconds=args.store_check_seconds,
        metrics_listen=args.metrics_listen,
        access_log=args.access_log,
        workers=args.workers,
    )
    worker = current_worker()
    if worker is None and settings.workers > 1:
        return _run_workers(settings, args.argv)
    if worker is not None:
        worker.stop_with_supervisor()
    # 1,000-document executions are ~340 KB buffers several times per call.
    keep_large_buffers_on_heap()
    try:
        if args.uvloop:
            import uvloop

            uvloop.run(serve(settings, worker))
        else:
            asyncio.run(serve(settings, worker))
    except (OSError, StoreError, ValueError) as error:
        logging.getLogger("service").error("cannot serve: %s", error)
        return 1
    return 0


def _run_workers(settings: ServeSettings, argv: Sequence[str]) -> int:
    try:
        ports = [SharedPort("--listen", *_host_port(settings.listen))]
        metrics = parse_metrics_listen(settings.metrics_listen)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if metrics is not None:
        ports.append(SharedPort("--metrics-listen", *metrics))
    return run_workers(
        "service",
        argv,
        settings.workers,
        ports,
        stop_timeout_s=settings.drain_seconds + settings.grace_seconds + STOP_MARGIN_S,
    )


def _host_port(listen: str) -> tuple[str, int]:
    host, separator, port = listen.rpartition(":")
    if not separator or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen must be HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port)


def _run_with_store(url: str, job: Callable[[Store], Awaitable[int]]) -> int:
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
        print(f"error: {error}", file=sys.stderr)
        return 1


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


def _run_admin(args: argparse.Namespace) -> int:
    action: Callable[[Store, argparse.Namespace], Awaitable[int]] = args.action
    return _run_with_store(args.store, lambda store: action(store, args))


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
    issued = await admin.create_api_key(store, args.namespace, args.permission)
    _print_json(
        {
            "id": issued.key.id,
            "api_key": issued.secret,
            "namespace_ids": list(issued.key.namespace_ids),
            "permissions": sorted(issued.key.permissions),
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
    key_file: Path = args.key_file or demo.default_key_file(args.store)

    async def seed(store: Store) -> int:
        data = await demo.seed(store, key_file)
        if args.json:
            _print_json(data.as_json())
        elif args.shell:
            print(demo.shell_exports(data))
        else:
            _print_demo(data)
        return 0

    return _run_with_store(args.store, seed)


def _print_demo(data: demo.DemoData) -> None:
    print(f"namespace  {data.namespace.name} ({data.namespace.id})")
    print(f"retriever  {data.retriever.name} ({data.retriever.id})")
    print(f"api key    {data.api_key}")
    for name, execution_id in data.executions.items():
        print(f"execution  {name:<15} {execution_id}")
