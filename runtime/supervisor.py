"""The supervisor of `--workers N`: N copies of one server process on one port.

Each worker is a fresh interpreter running the same entry point (`subprocess`,
not `fork`: gRPC is not fork-safe once imported), told by environment variables
(`runtime.worker`) that it is worker i. The workers share the listening port
through SO_REUSEPORT; the kernel spreads connections over them.

- A worker that dies is restarted after a backoff (0.1 s, doubling up to 10 s;
  back to 0.1 s once a worker has run 10 s), with one JSON line on stderr naming
  the worker, its pid and its exit code or signal.
- A worker that exits before it is ready (listening) is a start-up failure; 5 in a
  row (no worker becoming ready in between) stop the supervisor with status 1:
  a configuration that cannot serve is reported, not retried forever.
- SIGTERM/SIGINT are forwarded to every worker as SIGTERM: each drains and
  finishes its in-flight requests as it does alone. The supervisor exits 0
  once all have exited 0 (1 if one had to be killed after `stop_timeout_s`).
- Workers stay in the supervisor's process group; each gets SIGTERM if the
  supervisor itself dies, even by SIGKILL (`Worker.stop_with_supervisor`).

The loop polls its children every 50 ms: a handful of syscalls, nothing
measurable next to the workers, and no signal-mask games that the children
would inherit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Final, TextIO

import orjson

from runtime.ports import ReservedPort, reserve_port
from runtime.ready_file import write_ready_file
from runtime.worker import ENV_DIRECTORY, ENV_INDEX, ENV_SUPERVISOR, ready_marker

POLL_S: Final = 0.05
LOGGER_NAME: Final = "execgate.supervisor"


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    workers: int
    command: tuple[str, ...]  # argv of one worker: the same entry point and flags
    max_startup_failures: int = 5  # in a row, before any worker is ready: give up
    first_backoff_s: float = 0.1  # delay before the first restart of a worker
    max_backoff_s: float = 10.0
    stable_after_s: float = 10.0  # a worker that ran this long restarts without backoff
    stop_timeout_s: float = 60.0  # after SIGTERM, how long workers get before SIGKILL
    # Written (with the supervisor's pid) once every worker listens; "" none.
    ready_file: str = ""
    ready_addresses: tuple[tuple[str, str], ...] = ()  # (listener name, host:port)


@dataclass(slots=True)
class _Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready: bool = False
    failures: int = 0  # consecutive deaths, for the backoff
    restart_at: float | None = None


@dataclass(slots=True)
class _Signals:
    received: list[int] = field(default_factory=list)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)


class Supervisor:
    def __init__(
        self,
        settings: SupervisorSettings,
        *,
        environ: Mapping[str, str] = os.environ,
        log: TextIO = sys.stderr,
    ) -> None:
        self._settings = settings
        self._environ = environ
        self._log = log
        self._directory = Path(tempfile.mkdtemp(prefix="execgate-workers-"))
        self._slots = [_Slot(index) for index in range(settings.workers)]
        self._startup_failures = 0
        self._all_ready_logged = False

    @property
    def directory(self) -> Path:
        """Shared by the workers (ready markers, metrics sockets); removed by `run`."""
        return self._directory

    def run(self) -> int:
        """Start the workers and supervise them until a signal; returns the exit status."""
        signals = _Signals()
        previous = {
            signum: signal.signal(signum, signals.handle)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        # SIGHUP (re-read TLS certificates) goes on to every worker, which reloads.
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._forward_sighup)
        try:
            for slot in self._slots:
                self._start(slot)
            status = self._supervise(signals)
            return status if status is not None else self._stop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._kill_all()
            shutil.rmtree(self._directory, ignore_errors=True)

    def _forward_sighup(self, signum: int, frame: FrameType | None) -> None:
        for slot in self._slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.send_signal(signal.SIGHUP)

    def _supervise(self, signals: _Signals) -> int | None:
        """None when a signal asks to stop; 1 when workers keep failing at start-up."""
        while not signals.received:
            now = time.monotonic()
            for slot in self._slots:
                self._check(slot, now)
                if self._startup_failures >= self._settings.max_startup_failures:
                    self.emit(
                        "error",
                        "workers keep exiting before they are ready; giving up",
                        startup_failures=self._startup_failures,
                    )
                    self._stop()
                    return 1
            time.sleep(POLL_S)
        self.emit("info", "stopping workers", signal=signal.Signals(signals.received[0]).name)
        return None

    def _check(self, slot: _Slot, now: float) -> None:
        process = slot.process
        if process is None:
            if slot.restart_at is not None and now >= slot.restart_at:
                self._start(slot)
            return
        code = process.poll()
        if code is None:
            if not slot.ready and self._is_ready(slot, process.pid):
                slot.ready = True
                self._startup_failures = 0
                self.emit("info", "worker ready", worker=slot.index, pid=process.pid)
                if not self._all_ready_logged and all(s.ready for s in self._slots):
                    self._all_ready_logged = True
                    write_ready_file(
                        self._settings.ready_file, dict(self._settings.ready_addresses)
                    )
                    self.emit("info", "all workers ready", workers=len(self._slots))
            return
        if not slot.ready:
            self._startup_failures += 1
        if now - slot.started_at >= self._settings.stable_after_s:
            slot.failures = 0
        slot.failures += 1
        delay = min(
            self._settings.first_backoff_s * 2 ** (slot.failures - 1), self._settings.max_backoff_s
        )
        self.emit(
            "warning",
            "worker exited; restarting" if slot.ready else "worker exited before it was ready",
            worker=slot.index,
            pid=process.pid,
            **_exit_fields(code),
            restart_in_s=round(delay, 3),
        )
        slot.process = None
        slot.ready = False
        slot.restart_at = now + delay

    def _start(self, slot: _Slot) -> None:
        ready_marker(self._directory, slot.index).unlink(missing_ok=True)
        env = {
            **self._environ,
            ENV_INDEX: str(slot.index),
            ENV_DIRECTORY: str(self._directory),
            ENV_SUPERVISOR: str(os.getpid()),
        }
        # The supervisor's process group: `kill -- -PGID`, a terminal's Ctrl-C and a
        # CPU account of the group reach the workers too (a worker takes a second
        # SIGTERM/SIGINT mid-drain as the first: it goes on draining).
        slot.process = subprocess.Popen(self._settings.command, env=env)
        slot.started_at = time.monotonic()
        slot.restart_at = None
        self.emit("info", "worker started", worker=slot.index, pid=slot.process.pid)

    def _is_ready(self, slot: _Slot, pid: int) -> bool:
        try:
            return ready_marker(self._directory, slot.index).read_text() == str(pid)
        except OSError:
            return False

    def _stop(self) -> int:
        """SIGTERM every worker and wait for all; 0 when every one exited 0 in time."""
        live = [slot.process for slot in self._slots if slot.process is not None]
        for process in live:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._settings.stop_timeout_s
        status = 0
        for process in live:
            try:
                code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.emit("error", "worker did not stop in time; killing it", pid=process.pid)
                process.kill()
                code = process.wait()
            if code not in (0, -signal.SIGTERM):
                status = 1
        for slot in self._slots:
            slot.process = None
        self.emit("info", "workers stopped", status=status)
        return status

    def _kill_all(self) -> None:
        """Last resort on the way out (an exception in the loop): no orphaned workers."""
        for slot in self._slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.kill()
                slot.process.wait()

    def emit(self, level: str, message: str, **fields: object) -> None:
        """One JSON line on the log, shaped as the servers' own log lines."""
        write_line(self._log, level, message, **fields)


def _exit_fields(code: int) -> dict[str, object]:
    if code < 0:
        return {"exit_code": None, "signal": signal.Signals(-code).name}
    return {"exit_code": code, "signal": None}


@dataclass(frozen=True, slots=True)
class SharedPort:
    """A port all workers listen on, and the flag that tells a worker its address."""

    flag: str  # e.g. "--listen"
    host: str
    port: int  # 0: one free port, chosen once for all workers
    name: str  # its name in the ready file (`runtime.ready_file`): "http", "grpc", …


def run_workers(
    workers: int,
    ports: Sequence[SharedPort],
    *,
    stop_timeout_s: float,
    ready_file: str = "",
    command: Sequence[str] | None = None,
) -> int:
    """Serve as `workers` processes sharing `ports`; returns the exit status.

    Each worker runs `command` (default: this process's own command line, as it was
    started) plus `flag host:port` for each port, the last flag winning. Each port is
    reserved first (`runtime.ports`), so that port 0 becomes one concrete port.
    `ready_file`: written once every worker listens, as one server writes its own.
    """
    reserved: list[ReservedPort] = []
    try:
        for shared in ports:
            try:
                reserved.append(reserve_port(shared.host, shared.port))
            except OSError as error:
                write_line(
                    sys.stderr, "error", f"cannot listen on {shared.host}:{shared.port}: {error}"
                )
                return 1
        extra = [
            part
            for shared, port in zip(ports, reserved, strict=True)
            for part in (shared.flag, port.address)
        ]
        base = tuple(command) if command is not None else this_command()
        settings = SupervisorSettings(
            workers,
            (*base, *extra),
            stop_timeout_s=stop_timeout_s,
            ready_file=ready_file,
            ready_addresses=tuple(
                (shared.name, port.address) for shared, port in zip(ports, reserved, strict=True)
            ),
        )
        supervisor = Supervisor(settings)
        supervisor.emit(
            "info",
            "supervisor starting workers",
            workers=workers,
            addresses=[port.address for port in reserved],
        )
        return supervisor.run()
    finally:
        for port in reserved:
            port.release()


def this_command() -> tuple[str, ...]:
    """The command line this interpreter was started with (`-m module …` or a script's path
    and its arguments), with the interpreter's absolute path: a worker runs the same."""
    return (sys.executable, *sys.orig_argv[1:])


def write_line(stream: TextIO, level: str, message: str, **fields: object) -> None:
    entry = {"ts": time.time(), "level": level, "logger": LOGGER_NAME, "message": message}
    entry.update(fields)
    stream.write(orjson.dumps(entry).decode() + "\n")
    stream.flush()
