"""Start execgate servers as child processes and learn where they listen.

The one launcher of `make run` (scripts/run_local.py), the cluster command, the
benchmark and the tests. A child started with a ready file (`--ready-file`, which every
server command has) writes its pid and bound addresses there once it listens
(`runtime.ready_file`), so port 0 works everywhere and nothing parses log lines. A child
that dies first is reported with its exit status and the last lines of its output.

Every child runs in its own session (its own process group): a terminal's Ctrl-C reaches
only the launcher, which stops the children itself, in the order it chooses; `stop` ends
the whole group, so a worker a server forked goes with it.

Output goes to a log file (`log=`; the tail is read back from it), is copied line by
line with a `[name] ` prefix to a stream (`relay=`; the tail is kept in memory), or is
inherited from the launcher (neither).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, TextIO

START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 20.0  # after SIGTERM, before SIGKILL
_POLL_S: Final = 0.02
_TAIL_LINES: Final = 20
# Relay threads of several children may write to one stream: one line at a time.
_RELAY_LOCK: Final = threading.Lock()


class LaunchError(RuntimeError):
    """A child could not start: it exited first, or never became ready in time."""


@dataclass(frozen=True, slots=True)
class Ready:
    """What a child wrote to its ready file."""

    pid: int
    addresses: Mapping[str, str]  # listener name (grpc, http, metrics) -> host:port

    def address(self, listener: str) -> str:
        return self.addresses[listener]

    def port(self, listener: str) -> int:
        return int(self.addresses[listener].rsplit(":", 1)[1])


def python_module(module: str, *args: str) -> list[str]:
    """`python -m module args…` with this interpreter (the venv's)."""
    return [sys.executable, "-m", module, *args]


class Child:
    """One server process; `wait_ready` (or `ready`) returns its addresses."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        ready_file: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log: Path | None = None,
        relay: TextIO | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.ready_info: Ready | None = None
        self._dir = Path(tempfile.mkdtemp(prefix=f"execgate-{name}-"))
        self._ready_path = self._dir / "ready.json" if ready_file else None
        if self._ready_path is not None:
            self.command += ["--ready-file", str(self._ready_path)]
        self._log_path = log
        self._log: IO[bytes] | None = log.open("wb") if log is not None else None
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        output: IO[bytes] | int | None = self._log
        if relay is not None:
            output = subprocess.PIPE
        self.process = subprocess.Popen(
            self.command,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if relay is not None else output,
            stderr=output if self._log is None else subprocess.STDOUT,
            start_new_session=True,
        )
        self._relay: threading.Thread | None = None
        if relay is not None:
            self._relay = threading.Thread(
                target=self._copy_output, args=(relay,), name=f"relay-{name}", daemon=True
            )
            self._relay.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def output_tail(self) -> str:
        """The last lines the child wrote (empty when its output is inherited)."""
        if self._log is not None and self._log_path is not None:
            self._log.flush()
            lines = self._log_path.read_text(errors="replace").splitlines()
            return "\n".join(lines[-_TAIL_LINES:])
        return "".join(self._tail).rstrip("\n")

    def check_alive(self) -> None:
        """Raise LaunchError, with the exit status and output tail, if the child exited."""
        if self.process.poll() is not None:
            raise LaunchError(self._exited_message("exited"))

    # --- becoming ready ---------------------------------------------------------------

    def _ready_now(self) -> Ready | None:
        if self._ready_path is None:
            raise LaunchError(f"{self.name} was started without a ready file")
        try:
            document = json.loads(self._ready_path.read_text())
        except FileNotFoundError:
            return None
        pid = document.pop("pid")
        self.ready_info = Ready(pid, {str(k): str(v) for k, v in document.items()})
        return self.ready_info

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> Ready:
        """Block until the child's ready file appears; LaunchError if it dies or times out."""
        deadline = time.monotonic() + timeout_s
        while True:
            ready = self._ready_now()
            if ready is not None:
                return ready
            self.check_alive()
            if time.monotonic() > deadline:
                raise LaunchError(self._late_message(timeout_s))
            time.sleep(_POLL_S)

    async def ready(self, timeout_s: float = START_TIMEOUT_S) -> Ready:
        """`wait_ready` for an event loop."""
        deadline = time.monotonic() + timeout_s
        while True:
            ready = self._ready_now()
            if ready is not None:
                return ready
            self.check_alive()
            if time.monotonic() > deadline:
                raise LaunchError(self._late_message(timeout_s))
            await asyncio.sleep(_POLL_S)

    def wait_for_port(self, port: int, timeout_s: float = START_TIMEOUT_S) -> None:
        """For a program without a ready file: block until 127.0.0.1:port accepts."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise LaunchError(self._late_message(timeout_s)) from None
                time.sleep(_POLL_S * 2)

    # --- stopping -----------------------------------------------------------------------

    async def exited(self) -> int:
        """Wait (on an event loop) until the child exits; its exit status."""
        # Polled: Popen has no awaitable exit, and a thread blocked in wait() could not be
        # cancelled.
        while (status := self.process.poll()) is None:  # noqa: ASYNC110
            await asyncio.sleep(_POLL_S * 5)
        return status

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM the group, wait up to `timeout_s`, then SIGKILL what is left; the status."""
        if self.process.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout_s)
        # Workers of the group may outlive the leader; they go too.
        _signal_group(self.pid, signal.SIGKILL)
        status = self.process.wait()
        if self._relay is not None:
            self._relay.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        return status

    async def stop_async(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        return await asyncio.to_thread(self.stop, timeout_s)

    # --- helpers ------------------------------------------------------------------------

    def _copy_output(self, relay: TextIO) -> None:
        assert self.process.stderr is not None
        prefix = f"[{self.name}] "
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self._tail.append(line)
            with _RELAY_LOCK, contextlib.suppress(ValueError, OSError):  # may be closed
                relay.write(prefix + line)
                relay.flush()

    def _exited_message(self, what: str) -> str:
        tail = self.output_tail()
        shown = f"; last lines of its output:\n{tail}" if tail else ""
        return f"{self.name} {what} with status {self.process.poll()}{shown}"

    def _late_message(self, timeout_s: float) -> str:
        tail = self.output_tail()
        shown = f"; last lines of its output:\n{tail}" if tail else ""
        return f"{self.name} was not ready within {timeout_s:.0f} s{shown}"


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
