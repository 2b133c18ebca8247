"""Run `python -m service serve` as a child process on 127.0.0.1 port 0 (`runtime.launcher`)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from runtime.launcher import Child, Ready, python_module
from runtime.ready_file import GRPC

START_TIMEOUT_SECONDS = 20.0


@dataclass
class ServiceProcess:
    child: Child
    ready: Ready  # the addresses it bound (grpc, and metrics when asked for)
    log: Path

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.child.process

    @property
    def address(self) -> str:
        return self.ready.address(GRPC)


def spawn(store_url: str, log: Path, *extra: str) -> ServiceProcess:
    """Start the service and wait until it is ready (its output goes to `log`)."""
    env = {"EXECGATE_UVLOOP": "0", **os.environ}
    command = python_module("service", "serve", "--listen", "127.0.0.1:0", "--store", store_url)
    child = Child("service", [*command, *extra], env=env, log=log)
    try:
        return ServiceProcess(child, child.wait_ready(START_TIMEOUT_SECONDS), log)
    except BaseException:
        child.stop(timeout_s=0)
        raise


@contextmanager
def running(store_url: str, log: Path, *extra: str) -> Iterator[ServiceProcess]:
    """`spawn`, and stop the process on the way out if the test left it running."""
    service = spawn(store_url, log, *extra)
    try:
        yield service
    finally:
        service.child.stop(timeout_s=0)
