"""Start, watch and stop the benchmark's server processes (through `runtime.launcher`).

Every server runs in its own session (so its own process group): Ctrl-C in the
terminal reaches only the harness, which then stops each group itself, and any
worker a server forks is stopped and CPU-accounted with it.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from runtime.launcher import Child, LaunchError, Ready, python_module

REPO_ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 10.0


class HarnessError(Exception):
    """The benchmark cannot run: a server failed to start, answered wrongly or a tool is missing."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def python_module_command(module: str, *args: str) -> list[str]:
    """`python -m module args…` with the interpreter running the harness (the venv's)."""
    return python_module(module, *args)


class ServerProcess:
    """One long-running server (a `runtime.launcher.Child`), its output kept in a log file
    for post-mortems."""

    def __init__(
        self, name: str, command: Sequence[str], log_dir: Path, *, ready_file: bool = False
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.child = Child(name, command, ready_file=ready_file, cwd=REPO_ROOT, log=self.log_path)
        self.command = self.child.command
        self.process = self.child.process

    @property
    def pid(self) -> int:
        return self.child.pid

    def log_tail(self) -> str:
        return self.child.output_tail()

    def check_alive(self) -> None:
        try:
            self.child.check_alive()
        except LaunchError as error:
            raise HarnessError(str(error)) from None

    def wait_ready(self, timeout_s: float = 30.0) -> Ready:
        """For an execgate server (started with `ready_file=True`): its bound addresses."""
        try:
            return self.child.wait_ready(timeout_s)
        except LaunchError as error:
            raise HarnessError(str(error)) from None

    def wait_for_port(self, port: int, timeout_s: float = 30.0) -> None:
        """Block until the server accepts TCP connections on 127.0.0.1:port."""
        try:
            self.child.wait_for_port(port, timeout_s)
        except LaunchError as error:
            raise HarnessError(str(error)) from None

    def stop(self) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after a grace period."""
        self.child.stop(STOP_GRACE_S)


class ProcessSet:
    """Everything the harness started; leaving the `with` block stops all of it, always."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._servers: list[ServerProcess] = []

    def start(
        self, name: str, command: Sequence[str], *, ready_file: bool = False
    ) -> ServerProcess:
        """Start `command`; `ready_file`: it is an execgate server (see `wait_ready`)."""
        server = ServerProcess(name, command, self.log_dir, ready_file=ready_file)
        self._servers.append(server)
        return server

    def __enter__(self) -> ProcessSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Stop in reverse start order: front ends before the service they call.
        # Ignore a second Ctrl-C here so that nothing is left running.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for server in reversed(self._servers):
                server.stop()
        finally:
            signal.signal(signal.SIGINT, previous)
