"""A server started with `--workers N` as a child process, read through its supervisor's log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.demo import DemoData, seed
from service.store import open_store

SUPERVISOR = "execgate.supervisor"
START_TIMEOUT_S = 60.0  # N interpreters importing gRPC on a busy 2-core machine


@dataclass
class Supervised:
    process: subprocess.Popen[bytes]
    log: Path
    addresses: list[str]

    def events(self) -> list[dict[str, Any]]:
        """The supervisor's JSON log lines so far."""
        events = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and SUPERVISOR in line:
                events.append(json.loads(line))
        return events

    async def wait_for(
        self, matches: Callable[[dict[str, Any]], bool], timeout_s: float = START_TIMEOUT_S
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.events():
                if matches(event):
                    return event
            if self.process.poll() is not None:
                raise AssertionError(f"supervisor exited {self.process.returncode}:\n{self.tail()}")
            await asyncio.sleep(0.02)
        raise AssertionError(f"no such supervisor event in {timeout_s} s:\n{self.tail()}")

    def worker_pids(self) -> dict[int, int]:
        """The pid of each worker, the latest started one for a restarted worker."""
        pids: dict[int, int] = {}
        for event in self.events():
            if event["message"] == "worker started":
                pids[event["worker"]] = event["pid"]
        return pids

    def port(self, index: int = 0) -> int:
        return int(self.addresses[index].rsplit(":", 1)[1])

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


async def seeded_store(directory: Path) -> tuple[str, DemoData]:
    store_url = f"sqlite:///{directory / 'execgate.db'}"
    store = open_store(store_url)
    await store.open()
    try:
        return store_url, await seed(store, directory / "demo-key")
    finally:
        await store.close()


@asynccontextmanager
async def supervised(
    command: Sequence[str], log: Path, *, wait_ready: bool = True
) -> AsyncIterator[Supervised]:
    """Start `python -m <command…>` (which includes `--workers N`); kill all that is left after."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: ASYNC220 (returns at once: only a fork and exec)
            [sys.executable, "-m", *command],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "EXECGATE_GATEWAY_ACCESS_LOG": "false", "EXECGATE_UVLOOP": "0"},
        )
    server = Supervised(process, log, [])
    try:
        if wait_ready:
            started = await server.wait_for(lambda e: e["message"] == "supervisor starting workers")
            server.addresses = started["addresses"]
            await server.wait_for(lambda e: e["message"] == "all workers ready")
        yield server
    finally:
        pids = server.worker_pids().values()
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in pids:  # the supervisor's SIGKILL leaves them draining: end them now
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def listening_pids(port: int) -> set[int]:
    """The processes with a listening TCP socket on `port` (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (entry / "fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            pids.add(int(entry.name))
    return pids
