"""`python -m service cluster`: N service replicas and M gateways on one store, for local trials.

Every replica is a `python -m service serve` child process on a loopback
port; every gateway a `python -m gateway serve` child whose backend list names
all replicas (so it spreads calls round-robin over the SERVING ones and
retries UNAVAILABLE on another one). Ports are given or free ones (port 0: each child
reports the port it bound through its ready file, `runtime.launcher`). The children
inherit the environment, so any `EXECGATE_*` / `EXECGATE_GATEWAY_*` setting reaches all of
them (replicas serve metrics on a free port each unless `EXECGATE_METRICS_LISTEN` says
otherwise).

A child that dies is started again on the same address (so the gateways' backend list
stays right), and a log line says which, with its exit status and last output line
(`--restart off`: a dead child stays dead).

On SIGTERM or Ctrl-C the gateways stop first (they finish in-flight
requests), then the replicas (health NOT_SERVING, drain, grace period); a
child that outlives its stop timeout is killed. Replicas starting together on
an empty PostgreSQL database migrate it exactly once (advisory lock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TextIO

from observability.log_format import configure_logging
from observability.redaction import redact
from runtime.launcher import Child, LaunchError, python_module
from runtime.ready_file import GRPC, HTTP
from runtime.settings import (
    Setting,
    add_settings,
    boolean,
    count,
    fail,
    field_values,
    integer,
    seconds,
    text,
)

LOGGER: Final = logging.getLogger("execgate.cluster")
START_TIMEOUT_S: Final = 30.0
# How long a child may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S: Final = 20.0
# Pause before restarting a child that died, growing with each restart up to the maximum.
RESTART_DELAY_S: Final = 0.5
RESTART_DELAY_MAX_S: Final = 10.0


class ClusterError(RuntimeError):
    """A child process could not start (exited, or never reported its address)."""


@dataclass
class Member:
    """One child of the cluster and the address it listens on (kept across restarts)."""

    name: str  # service-1, gateway-2, ...
    child: Child
    address: str = ""  # host:port once started
    restarts: int = 0  # times it was started again and became ready
    failures: int = 0  # times in a row it died or did not start (grows the restart delay)

    @property
    def process(self) -> Any:
        """The current process (a `subprocess.Popen`)."""
        return self.child.process

    @property
    def pid(self) -> int:
        return self.child.pid

    @property
    def running(self) -> bool:
        return self.child.running

    async def exited(self) -> int:
        return await self.child.exited()

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL; returns the exit status."""
        return await self.child.stop_async(timeout_s)


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    store_url: str = ""
    replicas: int = 3
    gateways: int = 1
    host: str = "127.0.0.1"  # an IPv4 address every child listens on
    # Ports to use (empty or too few: a free port for the rest).
    service_ports: tuple[int, ...] = ()
    gateway_ports: tuple[int, ...] = ()
    # Extra flags for every `service serve` / `gateway serve`.
    service_args: tuple[str, ...] = ()
    gateway_args: tuple[str, ...] = ()
    # Start a child that died again, on its address.
    restart: bool = False

    def __post_init__(self) -> None:
        if not self.store_url:
            raise ValueError("a store URL is needed")
        if self.replicas < 1 or self.gateways < 0:
            raise ValueError("need at least one replica and zero or more gateways")


class Cluster:
    """The running children; `running_cluster` starts and stops them."""

    def __init__(self, settings: ClusterSettings, log: TextIO) -> None:
        self.settings = settings
        self.services: list[Member] = []
        self.gateways: list[Member] = []
        self._log = log
        self._stopping = asyncio.Event()

    @property
    def backend(self) -> str:
        """The gateways' backend list: every replica's address."""
        return ",".join(member.address for member in self.services)

    async def start_service(self, port: int = 0) -> Member:
        """Start one more replica (gateways started later include it)."""
        return await self._start(self.services, f"service-{len(self.services) + 1}", port)

    async def start_gateway(self, port: int = 0) -> Member:
        """Start one more gateway in front of every replica started so far."""
        return await self._start(self.gateways, f"gateway-{len(self.gateways) + 1}", port)

    async def stop(self) -> None:
        """Gateways first (they still need the replicas to finish requests), then replicas."""
        self._stopping.set()
        for group in (self.gateways, self.services):
            await asyncio.gather(*(member.stop() for member in group))

    async def _start(self, group: list[Member], name: str, port: int) -> Member:
        member = Member(name, self._spawn(name, port))
        # In the group at once, so that `stop()` finds it even if starting fails.
        group.append(member)
        member.address = await self._ready(member)
        return member

    def _spawn(self, name: str, port: int) -> Child:
        listen = f"{self.settings.host}:{port}"
        if name.startswith("service"):
            command = python_module("service", "serve", "--listen", listen)
            command.extend(self.settings.service_args)
            # Each replica's metrics endpoint on a port of its own (a fixed one would clash).
            env = {"EXECGATE_METRICS_LISTEN": f"{self.settings.host}:0", **os.environ}
            # The URL holds the password: in the environment (readable by this user only),
            # never in the arguments (readable by anyone in `ps` and /proc/<pid>/cmdline).
            env["EXECGATE_STORE"] = self.settings.store_url
            return Child(name, command, env=env, relay=self._log)
        command = python_module("gateway", "serve", "--listen", listen, "--backend", self.backend)
        command.extend(self.settings.gateway_args)
        return Child(name, command, relay=self._log)

    async def _ready(self, member: Member) -> str:
        try:
            ready = await member.child.ready(START_TIMEOUT_S)
        except LaunchError as error:
            raise ClusterError(str(error)) from None
        return ready.address(GRPC if member.name.startswith("service") else HTTP)

    async def supervise(self) -> None:
        """Restart every child that dies, on its address, until the cluster stops."""
        async with asyncio.TaskGroup() as group:
            for member in (*self.services, *self.gateways):
                group.create_task(self._keep_running(member))

    async def _keep_running(self, member: Member) -> None:
        while True:
            status = await member.exited()
            if self._stopping.is_set():
                return
            last = member.child.output_tail().rsplit("\n", 1)[-1]
            delay = min(RESTART_DELAY_S * 2**member.failures, RESTART_DELAY_MAX_S)
            member.failures += 1
            LOGGER.warning(
                "%s exited with status %d; restarting it on %s in %.1f s",
                member.name,
                status,
                member.address,
                delay,
                extra={"child": member.name, "status": status, "last_output": last},
            )
            await asyncio.sleep(delay)
            if self._stopping.is_set():
                return
            member.child.stop(timeout_s=0)  # its temporary files
            port = int(member.address.rsplit(":", 1)[1])
            member.child = self._spawn(member.name, port)
            try:
                await self._ready(member)
            except ClusterError as error:
                LOGGER.warning("%s did not start again: %s", member.name, error)
                continue
            member.restarts += 1
            LOGGER.info(
                "%s restarted on %s, pid %d",
                member.name,
                member.address,
                member.pid,
                extra={"child": member.name, "restarts": member.restarts},
            )


@contextlib.asynccontextmanager
async def running_cluster(
    settings: ClusterSettings, log: TextIO = sys.stderr
) -> AsyncIterator[Cluster]:
    """Start the replicas (together: they share the migration lock), then the gateways;
    with `settings.restart`, restart children that die; stop everything on the way out,
    also when starting failed halfway."""
    cluster = Cluster(settings, log)
    supervisor: asyncio.Task[None] | None = None
    try:
        async with asyncio.TaskGroup() as group:
            for port in _ports(settings.service_ports, settings.replicas):
                group.create_task(cluster.start_service(port))
        async with asyncio.TaskGroup() as group:
            for port in _ports(settings.gateway_ports, settings.gateways):
                group.create_task(cluster.start_gateway(port))
        if settings.restart:
            supervisor = asyncio.create_task(cluster.supervise())
        yield cluster
    finally:
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        await cluster.stop()


def _ports(given: Sequence[int], count: int) -> list[int]:
    return [*given[:count], *[0] * max(0, count - len(given))]


# --- command line -----------------------------------------------------------------


def _port_list(value: str) -> tuple[int, ...]:
    ports = tuple(integer(part) for part in value.split(",") if part.strip())
    if any(not 0 <= port <= 65535 for port in ports):
        raise ValueError("ports are 0..65535")
    return ports


ENV_PREFIX: Final = "EXECGATE_CLUSTER_"
OPTIONS: Final[tuple[Setting[Any], ...]] = (
    Setting.of(
        ClusterSettings, "replicas", "--replicas", count, "service replicas", env=ENV_PREFIX
    ),
    Setting.of(ClusterSettings, "gateways", "--gateways", count, "gateways", env=ENV_PREFIX),
    Setting(
        "--store",
        "EXECGATE_STORE",
        text,
        "",
        "store URL shared by every replica, e.g. postgresql://user:pw@host/db (required; "
        "replicas get it in their environment, never in their arguments)",
        "URL",
        field="store_url",
        secret=True,
    ),
    Setting.of(
        ClusterSettings,
        "host",
        "--host",
        text,
        "IPv4 address every child listens on",
        env=ENV_PREFIX,
    ),
    Setting.of(
        ClusterSettings,
        "service_ports",
        "--service-ports",
        _port_list,
        "ports of the replicas (default: free ports)",
        env=ENV_PREFIX,
        metavar="P1,P2,…",
    ),
    Setting.of(
        ClusterSettings,
        "gateway_ports",
        "--gateway-ports",
        _port_list,
        "ports of the gateways (default: free ports)",
        env=ENV_PREFIX,
        metavar="P1,P2,…",
    ),
)
RESTART: Final = Setting(
    "--restart",
    ENV_PREFIX + "RESTART",
    boolean,
    True,
    "start a child that dies again, on its address, and log which and why",
    field="restart",
)
DRAIN_SECONDS: Final = Setting(
    "--drain-seconds",
    ENV_PREFIX + "DRAIN_SECONDS",
    seconds,
    1.0,
    "each replica's --drain-seconds on shutdown",
)


def add_command(commands: Any, name: str = "cluster") -> None:
    """The `cluster` subcommand of `python -m service` (and of `execgate`)."""
    parser = commands.add_parser(
        name,
        help="run N service replicas and M gateways on one store until SIGTERM or Ctrl-C",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_settings(parser, (*OPTIONS, RESTART, DRAIN_SECONDS))
    parser.set_defaults(run=run_command, prog=parser.prog)


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> ClusterSettings:
    """Raises ValueError naming the flag or variable (or the rule) that is not met."""
    fields = field_values(args, (*OPTIONS, RESTART), environ)
    if not fields["store_url"]:
        raise ValueError(
            "--store (or --store-file, EXECGATE_STORE, EXECGATE_STORE_FILE) is required"
        )
    drain = DRAIN_SECONDS.value(args, environ)
    return ClusterSettings(**fields, service_args=("--drain-seconds", str(drain)))


def run_command(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args, os.environ)
    except ValueError as invalid:
        fail(str(invalid), args.prog)
    configure_logging("INFO")  # the cluster's own lines (restarts), as JSON
    failed: list[BaseException] = []
    try:
        return asyncio.run(_run(settings))
    except* ClusterError as errors:
        failed.extend(errors.exceptions)
    for error in failed:  # may quote a child's output: no password in it
        print(f"error: {redact(str(error))}", file=sys.stderr)
    return 1


async def _run(settings: ClusterSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running_cluster(settings) as cluster:
        for member in (*cluster.services, *cluster.gateways):
            scheme = "http://" if member in cluster.gateways else ""
            print(f"{member.name:<10} {scheme}{member.address}  pid {member.pid}", flush=True)
        print("Ctrl-C or SIGTERM stops them all.", flush=True)
        # Run until asked to stop, or (without restarts) until every child has gone.
        members = (*cluster.services, *cluster.gateways)
        waits: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
        if not settings.restart:
            waits.append(asyncio.create_task(_all_exited(members)))
        await asyncio.wait(waits, return_when=FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
    return 0 if stop.is_set() else 1


async def _all_exited(members: Sequence[Member]) -> None:
    await asyncio.gather(*(member.exited() for member in members))
