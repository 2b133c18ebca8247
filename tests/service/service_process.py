"""Run `python -m service serve` as a child process on 127.0.0.1 port 0, and find its port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
START_TIMEOUT_SECONDS = 20.0


@dataclass
class ServiceProcess:
    process: subprocess.Popen[str]
    address: str
    log: Path


def spawn(store_url: str, log: Path, *extra: str) -> ServiceProcess:
    """Start the service and wait until it logs its address (its stderr goes to `log`)."""
    env = {"EXECGATE_UVLOOP": "0", **os.environ}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--store",
                store_url,
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            env=env,
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        found = _LISTENING.search(log.read_text())
        if found:
            return ServiceProcess(process, f"127.0.0.1:{found.group(1)}", log)
        if process.poll() is not None:
            raise RuntimeError(f"service exited with {process.returncode}: {log.read_text()}")
        time.sleep(0.02)
    process.kill()
    process.wait()
    raise TimeoutError(f"service did not start: {log.read_text()}")


@contextmanager
def running(store_url: str, log: Path, *extra: str) -> Iterator[ServiceProcess]:
    """`spawn`, and kill the process on the way out if the test left it running."""
    service = spawn(store_url, log, *extra)
    try:
        yield service
    finally:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()
