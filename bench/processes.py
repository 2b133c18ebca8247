"""Start, watch and stop the benchmark's server processes.

Every server runs in its own session (so its own process group): Ctrl-C in the
terminal reaches only the harness, which then stops each group itself, and any
worker a server forks is stopped and CPU-accounted with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

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
    return [sys.executable, "-m", module, *args]


class ServerProcess:
    """One long-running server, its output kept in a log file for post-mortems."""

    def __init__(self, name: str, command: Sequence[str], log_dir: Path) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise HarnessError(
                f"{self.name} exited with status {self.process.returncode}; "
                f"last lines of its output:\n{self.log_tail()}"
            )

    def wait_for_port(self, port: int, timeout_s: float = 30.0) -> None:
        """Block until the server accepts TCP connections on 127.0.0.1:port."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise HarnessError(
            f"{self.name} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s; "
            f"last lines of its output:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after a grace period."""
        if self.process.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_GRACE_S)
        # Workers of the group may outlive the leader; they go too.
        _signal_group(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_GRACE_S)
        self._log.close()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class ProcessSet:
    """Everything the harness started; leaving the `with` block stops all of it, always."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._servers: list[ServerProcess] = []

    def start(self, name: str, command: Sequence[str]) -> ServerProcess:
        server = ServerProcess(name, command, self.log_dir)
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
