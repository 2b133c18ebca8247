"""CPU time and resident memory of a process group, read from /proc (Linux only)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

_PROC = Path("/proc")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _group_pids(pgid: int) -> list[int]:
    """PIDs whose process group is `pgid` (a server and any workers it forked)."""
    pids: list[int] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may contain spaces)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Field 3 (state) is index 0 here, so pgrp (5) is 2, utime (14) 11, stime (15) 12.
    return text.rsplit(")", 1)[1].split()


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU consumed so far by the live processes of a group."""
    ticks = 0
    for pid in _group_pids(pgid):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _CLOCK_TICKS


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU consumed so far by one process (0 when it is gone)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS if fields is not None else 0.0


def group_rss_kib(pgid: int) -> int:
    """Resident set size (VmRSS) summed over the live processes of a group, in KiB."""
    return sum(rss_kib_by_pid(pgid).values())


def rss_kib_by_pid(pgid: int) -> dict[int, int]:
    """Resident set size (VmRSS) of each live process of a group, in KiB."""
    sizes = {}
    for pid in _group_pids(pgid):
        try:
            status = (_PROC / str(pid) / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes[pid] = int(line.split()[1])
    return sizes


def wait_until_idle(
    pgids: Iterable[int], *, window_s: float = 0.2, busy_share: float = 0.1, limit_s: float = 15.0
) -> float:
    """Wait until the groups together use < `busy_share` of a CPU over `window_s`.

    A server may still be working off requests queued by the previous load run
    (clients that disconnect do not cancel every handler); measuring on top of that
    backlog would charge one target for another's work. Returns the seconds waited
    (at most `limit_s`; then the caller measures anyway).
    """
    groups = list(pgids)
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = sum(group_cpu_seconds(pgid) for pgid in groups)
        time.sleep(window_s)
        if sum(group_cpu_seconds(pgid) for pgid in groups) - before < busy_share * window_s:
            break
    return time.monotonic() - started


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU so far of a process's live threads, summed per thread name (comm).

    Shows how a process's CPU splits between its main thread (the event loop) and
    native threads that a Python profiler cannot see (gRPC's `event_engine`, …).
    """
    by_name: dict[str, float] = {}
    tasks = _PROC / str(pid) / "task"
    for task in tasks.iterdir():
        try:
            name = (task / "comm").read_text().strip()
            if task.name == str(pid):
                name = "main thread"
            elif name == "python":
                # Python 3.11 does not name OS threads: executors, gRPC's poller, …
                name = "other Python threads"
            text = (task / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = text.rsplit(")", 1)[1].split()
        by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return by_name
