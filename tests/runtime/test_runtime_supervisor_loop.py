"""The supervisor's loop with tiny stand-in workers (no gRPC): restart, give up, stop.

The workers are real processes running a few lines of Python that do what a server's
worker does towards the supervisor: write the ready marker, then wait for SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

# A stand-in worker: ready at once (unless FAIL is set), exits 0 on SIGTERM.
WORKER = """
import os, signal, sys, time
from runtime.worker import current_worker
if os.environ.get("FAIL"):
    sys.exit(3)
worker = current_worker()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
worker.mark_ready()
while True:
    time.sleep(1)
"""
SUPERVISOR = """
import sys
from runtime.supervisor import Supervisor, SupervisorSettings
command = (sys.executable, "-c", {worker!r})
sys.exit(Supervisor(SupervisorSettings({workers}, command, first_backoff_s=0.05)).run())
"""


def _start(tmp_path: Path, workers: int, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "supervisor.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR.format(worker=WORKER, workers=workers)],
            stderr=stderr,
            env={**os.environ, **env},
        )
    return process, log


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _wait_for(log: Path, message: str, count: int = 1, timeout_s: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [e for e in _events(log) if e["message"] == message]
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"not {count} of {message!r}:\n{log.read_text()}")


def test_a_dead_worker_is_restarted_and_sigterm_stops_all_with_status_0(tmp_path: Path) -> None:
    process, log = _start(tmp_path, 2)
    try:
        _wait_for(log, "all workers ready")
        victim = next(e["pid"] for e in _events(log) if e["message"] == "worker ready")
        os.kill(victim, signal.SIGKILL)
        exited = _wait_for(log, "worker exited; restarting")[0]
        assert exited["pid"] == victim
        assert exited["signal"] == "SIGKILL"
        assert exited["exit_code"] is None
        assert exited["restart_in_s"] == 0.05
        assert len(_wait_for(log, "worker ready", count=3)) == 3  # the replacement too
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert _events(log)[-1] == {**_events(log)[-1], "message": "workers stopped", "status": 0}
    finally:
        process.kill()
        process.wait()


def test_workers_failing_at_start_up_make_the_supervisor_give_up(tmp_path: Path) -> None:
    process, log = _start(tmp_path, 2, FAIL="1")
    try:
        assert process.wait(timeout=30) == 1
    finally:
        process.kill()
        process.wait()
    failures = [e for e in _events(log) if e["message"] == "worker exited before it was ready"]
    assert len(failures) == 5
    assert {e["exit_code"] for e in failures} == {3}
    assert any(e["message"].startswith("workers keep exiting") for e in _events(log))
