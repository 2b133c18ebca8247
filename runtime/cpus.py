"""How many CPUs this process may use: the `auto` of `--workers`.

`os.cpu_count()` is the machine's CPUs; a container (or `taskset`) usually
gets fewer. Two limits apply, and the smaller wins: the CPU affinity mask
(`os.sched_getaffinity`), and the cgroup CPU quota — cgroup v2's `cpu.max`
(`"<quota> <period>"` or `"max <period>"`) on this process's cgroup or any
ancestor, or cgroup v1's `cpu.cfs_quota_us / cpu.cfs_period_us`. A quota of
1.5 CPUs gives 1 worker, not 2: two busy workers on 1.5 CPUs are throttled
every scheduling period, which shows up as tail latency (Go's automaxprocs
rounds down for the same reason). Never fewer than 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Final

CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP: Final = Path("/proc/self/cgroup")
# More worker processes than this on one box is a typo, not a deployment.
MAX_WORKERS: Final = 256


def available_cpus(
    *,
    cgroup_root: Path = CGROUP_ROOT,
    proc_self_cgroup: Path = PROC_SELF_CGROUP,
    affinity: int | None = None,
) -> int:
    """The CPUs this process may use, rounded down, at least 1 (arguments: for tests)."""
    cpus = affinity if affinity is not None else _affinity()
    quota = cgroup_cpu_quota(cgroup_root, proc_self_cgroup)
    if quota is not None:
        cpus = min(cpus, math.floor(quota))
    return max(1, cpus)


def _affinity() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cgroup_cpu_quota(cgroup_root: Path, proc_self_cgroup: Path) -> float | None:
    """The CPU quota in CPUs (e.g. 1.5), or None when there is none (or no cgroup fs)."""
    quotas = [*_v2_quotas(cgroup_root, proc_self_cgroup), *_v1_quotas(cgroup_root)]
    return min(quotas) if quotas else None


def _v2_quotas(root: Path, proc_self_cgroup: Path) -> list[float]:
    """`cpu.max` of this process's cgroup and each ancestor up to the root."""
    quotas = []
    for directory in _v2_directories(root, proc_self_cgroup):
        quota = _read_cpu_max(directory / "cpu.max")
        if quota is not None:
            quotas.append(quota)
    return quotas


def _v2_directories(root: Path, proc_self_cgroup: Path) -> list[Path]:
    relative = ""
    try:
        for line in proc_self_cgroup.read_text().splitlines():
            if line.startswith("0::"):  # the v2 hierarchy's line
                relative = line[3:].strip().strip("/")
    except OSError:
        pass
    directories = [root]
    current = root
    for part in Path(relative).parts if relative else ():
        current = current / part
        directories.append(current)
    return directories


def _read_cpu_max(path: Path) -> float | None:
    try:
        fields = path.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quotas(root: Path) -> list[float]:
    quotas = []
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        directory = root / controller
        try:
            quota = int((directory / "cpu.cfs_quota_us").read_text().strip())
            period = int((directory / "cpu.cfs_period_us").read_text().strip())
        except (OSError, ValueError):
            continue
        if quota > 0 and period > 0:  # -1: no quota
            quotas.append(quota / period)
    return quotas


def parse_workers(value: str) -> int:
    """`--workers`: a positive number of processes, or `auto` (`available_cpus()`)."""
    text = value.strip().lower()
    if text == "auto":
        return available_cpus()
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"expected a positive number or auto, not {value!r}") from None
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(f"expected 1 to {MAX_WORKERS} or auto, not {value!r}")
    return count
