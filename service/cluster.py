"""`python -m service cluster`: N service replicas and M gateways on one store, for local trials.

Every replica is a `python -m service serve` child process on a loopback
port; every gateway a `python -m gateway serve` child whose backend list names
all replicas (so it spreads calls round-robin over the SERVING ones and
retries UNAVAILABLE on another one). Ports are given or free ones (port 0: each child reports the
port it bound, no guessing). The children inherit the environment, so any
`EXECGATE_*` / `EXECGATE_GATEWAY_*` setting reaches all of them (replicas serve
metrics on a free port each unless `EXECGATE_METRICS_LISTEN` says otherwise).

On SIGTERM or Ctrl-C the gateways stop first (they finish in-flight
requests), then the replicas (health NOT_SERVING, drain, grace period); a
child that outlives its stop timeout is killed. Replicas starting together on
an empty PostgreSQL database migrate it exactly once (advisory lock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import sys
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

from runtime.settings import Setting, add_settings, fail, field_values, integer, number, text

_SERVICE_LISTENING: Final = re.compile(rb"execgate service listening on ([^\s:]+):(\d+)")
_GATEWAY_LISTENING: Final = re.compile(rb"gateway listening on http://([^\s:]+):(\d+)")
START_TIMEOUT_S: Final = 30.0
# How long a child may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S: Final = 20.0


class ClusterError(RuntimeError):
    """A child process could not start (exited, or never reported its address)."""


@dataclass
class Child:
    """One child process and the address it listens on."""

    name: str  # service-1, gateway-2, ...
    process: asyncio.subprocess.Process
    address: str = ""  # host:port once started
    stderr_pump: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL; returns the exit status."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
        status = await self.process.wait()
        if self.stderr_pump is not None:
            await self.stderr_pump  # ends at EOF of the child's stderr
        return status


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

    def __post_init__(self) -> None:
        if not self.store_url:
            raise ValueError("a store URL is needed")
        if self.replicas < 1 or self.gateways < 0:
            raise ValueError("need at least one replica and zero or more gateways")


class Cluster:
    """The running children; `running_cluster` starts and stops them."""

    def __init__(self, settings: ClusterSettings, log: TextIO) -> None:
        self.settings = settings
        self.services: list[Child] = []
        self.gateways: list[Child] = []
        self._log = log

    @property
    def backend(self) -> str:
        """The gateways' backend list: every replica's address."""
        return ",".join(child.address for child in self.services)

    async def start_service(self, port: int = 0) -> Child:
        """Start one more replica (gateways started later include it)."""
        listen = f"{self.settings.host}:{port}"
        args = ["-m", "service", "serve", "--listen", listen, "--store", self.settings.store_url]
        args.extend(self.settings.service_args)
        # Each replica's metrics endpoint on a port of its own (a fixed one would clash).
        env = {"EXECGATE_METRICS_LISTEN": f"{self.settings.host}:0", **os.environ}
        return await self._spawn(self.services, "service", args, _SERVICE_LISTENING, env)

    async def start_gateway(self, port: int = 0) -> Child:
        """Start one more gateway in front of every replica started so far."""
        listen = f"{self.settings.host}:{port}"
        args = ["-m", "gateway", "serve", "--listen", listen, "--backend", self.backend]
        args.extend(self.settings.gateway_args)
        return await self._spawn(self.gateways, "gateway", args, _GATEWAY_LISTENING, None)

    async def stop(self) -> None:
        """Gateways first (they still need the replicas to finish requests), then replicas."""
        for group in (self.gateways, self.services):
            await asyncio.gather(*(child.stop() for child in group))

    async def _spawn(
        self,
        group: list[Child],
        kind: str,
        args: Sequence[str],
        listening: re.Pattern[bytes],
        env: dict[str, str] | None,
    ) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            # Own process group: a terminal's Ctrl-C reaches only the launcher,
            # which then stops the children in order (gateways first).
            process_group=0,
        )
        # In the group at once, so that `stop()` finds it even if starting fails.
        child = Child(f"{kind}-{len(group) + 1}", process)
        group.append(child)
        address: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        child.stderr_pump = asyncio.create_task(self._copy_stderr(child, listening, address))
        try:
            child.address = await asyncio.wait_for(address, START_TIMEOUT_S)
        except TimeoutError:
            raise ClusterError(f"{child.name} did not report its address") from None
        return child

    async def _copy_stderr(
        self, child: Child, listening: re.Pattern[bytes], address: asyncio.Future[str]
    ) -> None:
        """Copy the child's stderr to our log, prefixed; resolve `address` on its first
        'listening' line, or fail it when the child exits first."""
        assert child.process.stderr is not None
        prefix = f"[{child.name}] "
        async for line in child.process.stderr:
            if not address.done():
                found = listening.search(line)
                if found:
                    address.set_result(f"{found[1].decode()}:{found[2].decode()}")
            self._log.write(prefix + line.decode(errors="replace"))
            self._log.flush()
        if not address.done():
            address.set_exception(ClusterError(f"{child.name} exited before listening"))


@contextlib.asynccontextmanager
async def running_cluster(
    settings: ClusterSettings, log: TextIO = sys.stderr
) -> AsyncIterator[Cluster]:
    """Start the replicas (together: they share the migration lock), then the gateways;
    stop everything on the way out, also when starting failed halfway."""
    cluster = Cluster(settings, log)
    try:
        async with asyncio.TaskGroup() as group:
            for port in _ports(settings.service_ports, settings.replicas):
                group.create_task(cluster.start_service(port))
        async with asyncio.TaskGroup() as group:
            for port in _ports(settings.gateway_ports, settings.gateways):
                group.create_task(cluster.start_gateway(port))
        yield cluster
    finally:
        await cluster.stop()


def _ports(given: Sequence[int], count: int) -> list[int]:
    return [*given[:count], *[0] * max(0, count - len(given))]


# --- command line -----------------------------------------------------------------


def _port_list(value: str) -> tuple[int, ...]:
    ports = tuple(integer(part) for part in value.split(",") if part.strip())
    if any(not 0 <= port <= 65535 for port in ports):
        raise ValueError("ports are 0..65535")
    return ports


def _count(value: str) -> int:
    count = integer(value)
    if count < 0:
        raise ValueError("expected 0 or more")
    return count


ENV_PREFIX: Final = "EXECGATE_CLUSTER_"
OPTIONS: Final[tuple[Setting[Any], ...]] = (
    Setting.of(
        ClusterSettings, "replicas", "--replicas", _count, "service replicas", env=ENV_PREFIX
    ),
    Setting.of(ClusterSettings, "gateways", "--gateways", _count, "gateways", env=ENV_PREFIX),
    Setting(
        "--store",
        "EXECGATE_STORE",
        text,
        "",
        "store URL shared by every replica, e.g. postgresql://user:pw@host/db (required)",
        "URL",
        field="store_url",
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
DRAIN_SECONDS: Final = Setting(
    "--drain-seconds",
    ENV_PREFIX + "DRAIN_SECONDS",
    number,
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
    add_settings(parser, (*OPTIONS, DRAIN_SECONDS))
    parser.set_defaults(run=run_command, prog=parser.prog)


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> ClusterSettings:
    """Raises ValueError naming the flag or variable (or the rule) that is not met."""
    fields = field_values(args, OPTIONS, environ)
    if not fields["store_url"]:
        raise ValueError("--store (or EXECGATE_STORE) is required")
    drain = DRAIN_SECONDS.value(args, environ)
    return ClusterSettings(**fields, service_args=("--drain-seconds", str(drain)))


def run_command(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args, os.environ)
    except ValueError as invalid:
        fail(str(invalid), args.prog)
    failed: list[BaseException] = []
    try:
        return asyncio.run(_run(settings))
    except* ClusterError as errors:
        failed.extend(errors.exceptions)
    for error in failed:
        print(f"error: {error}", file=sys.stderr)
    return 1


async def _run(settings: ClusterSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running_cluster(settings) as cluster:
        for child in (*cluster.services, *cluster.gateways):
            scheme = "http://" if child in cluster.gateways else ""
            print(f"{child.name:<10} {scheme}{child.address}  pid {child.pid}", flush=True)
        print("Ctrl-C or SIGTERM stops them all.", flush=True)
        # Run until asked to stop, or until every child has gone.
        children = (*cluster.services, *cluster.gateways)
        all_exited = asyncio.create_task(_all_exited(children))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait((stopping, all_exited), return_when=FIRST_COMPLETED)
        stopping.cancel()
        all_exited.cancel()
    return 0 if stop.is_set() else 1


async def _all_exited(children: Sequence[Child]) -> None:
    await asyncio.gather(*(child.process.wait() for child in children))
