"""`execgate`: the one command for everything a user runs.

    execgate serve      the product on one box: gateway and service in one process
    execgate gateway    the REST gateway alone
    execgate service    the gRPC service alone
    execgate admin …    namespaces, retrievers and API keys
    execgate demo       seed the demo data
    execgate cluster    N service replicas and M gateways on one store
    execgate --version

Each subcommand is the very parser of its module entry point (`python -m singleprocess
serve`, `python -m gateway serve`, `python -m service serve|admin|demo|cluster`), so
flags, environment variables and help read the same everywhere (`runtime.settings`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from runtime.grpc_io import use_polling_io

# Before anything imports grpc: gRPC core reads its experiments once, at import.
use_polling_io()

from gateway import cli as gateway_cli  # noqa: E402
from runtime.settings import CommandParser  # noqa: E402
from service import cli as service_cli  # noqa: E402
from service import cluster  # noqa: E402
from singleprocess import cli as singleprocess_cli  # noqa: E402


def package_version() -> str:
    try:
        return version("execgate")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="execgate",
        description="execgate: retriever execution records over gRPC and REST. Every flag "
        "can also be set with the environment variable shown in its help; a flag wins.",
    )
    parser.add_argument("--version", action="version", version=f"execgate {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    singleprocess_cli.add_serve_command(commands, "serve")
    gateway_cli.add_serve_command(commands, "gateway")
    service_cli.add_serve_command(commands, "service")
    service_cli.add_admin_command(commands)
    service_cli.add_demo_command(commands)
    cluster.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
