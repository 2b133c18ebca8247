"""REST lookup throughput of 1 vs N service replicas on PostgreSQL behind one gateway.

    python -m bench.replicas [--store postgresql://…] [--duration 10] [--connections 64]

Without `--store`, a throwaway PostgreSQL cluster is created in a temporary
folder (initdb/pg_ctl must be installed; see tests/support/pg_cluster.py) and removed
afterwards. For each replica count, `python -m service cluster`'s launcher
starts the replicas and one gateway (access logs off), wrk loads the gateway
with lookups of the demo's completed 10-document execution, and the CPU each
process used during the run is read from /proc, so the table shows which
process was the bottleneck. Same machine, same run, same database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.load_result import LoadResult
from bench.proc_stats import group_cpu_seconds, wait_until_idle
from bench.wrk import run_wrk
from service.cluster import Cluster, ClusterSettings, running_cluster
from service.demo import DemoData, seed
from service.store import open_store

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measurement:
    replicas: int
    load: LoadResult
    cpu_share: dict[str, float]  # process → CPUs used on average during the run


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU so far of a process and its live children. (PostgreSQL's backends
    each lead a process group of their own, so a group sum would miss them.)"""
    total = 0
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # After the command name: state, ppid, ..., utime (index 11), stime (12).
        if int(entry.name) == root_pid or int(fields[1]) == root_pid:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine spent so far (every CPU, not idle)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@contextlib.contextmanager
def database(url: str | None) -> Iterator[tuple[str, int | None]]:
    """The store URL and the PostgreSQL server's main process ID (None: not ours to watch)."""
    if url is not None:
        yield url, None
        return
    from tests.support.pg_cluster import PgCluster, find_server_binaries

    bin_dir = find_server_binaries()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL binaries (initdb, pg_ctl) found; pass --store URL")
    cluster = PgCluster.create(bin_dir)
    try:
        cluster.start()
        postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
        yield cluster.url(), postmaster
    finally:
        cluster.destroy()


async def seed_demo(store_url: str, key_file: Path) -> DemoData:
    store = open_store(store_url)
    await store.open()
    try:
        return await seed(store, key_file)
    finally:
        await store.close()


async def check_answer(url: str, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession(headers=headers) as http, http.get(url) as response:
        if response.status != 200:
            raise SystemExit(f"{url} answered {response.status}: {await response.text()}")


def cpu_seconds(cluster: Cluster, postmaster: int | None) -> dict[str, float]:
    """CPU so far of every process that serves a lookup, and of the whole machine."""
    # The launcher starts every child in a process group of its own.
    used = {"gateway": group_cpu_seconds(cluster.gateways[0].pid)}
    used.update({child.name: group_cpu_seconds(child.pid) for child in cluster.services})
    if postmaster is not None:
        used["postgres"] = tree_cpu_seconds(postmaster)
    used["machine"] = machine_busy_seconds()
    return used


async def measure(
    store_url: str,
    postmaster: int | None,
    demo: DemoData,
    replicas: int,
    args: argparse.Namespace,
) -> Measurement:
    settings = ClusterSettings(
        store_url=store_url,
        replicas=replicas,
        gateways=1,
        gateway_args=("--access-log", "false"),
    )
    headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
    path = f"/v1/retrievers/{demo.retriever.name}/executions/{demo.executions['completed_10']}"
    children_log = io.StringIO()  # shown only when a child fails to start
    try:
        async with running_cluster(settings, children_log) as cluster:
            base = f"http://{cluster.gateways[0].address}"
            await check_answer(base + path, headers)

            def load(duration_s: int) -> LoadResult:
                return run_wrk(
                    base,
                    [path],
                    connections=args.connections,
                    duration_s=duration_s,
                    headers=headers,
                    expected_status=200,
                )

            await asyncio.to_thread(load, 2)  # warm-up: connections, caches, pools
            children = [child.pid for child in (*cluster.services, *cluster.gateways)]
            await asyncio.to_thread(wait_until_idle, children)
            before = cpu_seconds(cluster, postmaster)
            started = time.monotonic()
            result = await asyncio.to_thread(load, args.duration)
            elapsed = time.monotonic() - started
            after = cpu_seconds(cluster, postmaster)
    except Exception:
        print(children_log.getvalue()[-4000:], file=sys.stderr)
        raise
    cpu_share = {name: (after[name] - before[name]) / elapsed for name in after}
    cpu_share["wrk"] = result.client_cpu_s / elapsed
    return Measurement(replicas, result, cpu_share)


def report(measurements: list[Measurement]) -> str:
    """One row per run: throughput, latency, CPUs used per process while it ran,
    and CPU per request (which does not depend on what else the machine ran)."""
    lines = [
        "| replicas | req/s | p50 ms | p99 ms | errors "
        "| CPUs used: gateway · replicas · postgres · wrk | whole machine "
        "| CPU µs/request: gateway · replicas · postgres |",
        "|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for m in measurements:
        share = m.cpu_share
        replica_shares = [share[name] for name in share if name.startswith("service-")]
        postgres = share.get("postgres", math.nan)
        per_request = 1e6 / m.load.throughput if m.load.throughput else math.nan
        lines.append(
            f"| {m.replicas} | {m.load.throughput:,.0f} | {m.load.p50_us / 1000:.1f} "
            f"| {m.load.p99_us / 1000:.1f} | {m.load.unexpected} "
            f"| {share['gateway']:.2f} · {' + '.join(f'{r:.2f}' for r in replica_shares)} "
            f"· {postgres:.2f} · {share['wrk']:.2f} | {share['machine']:.2f} "
            f"| {share['gateway'] * per_request:.0f} · {sum(replica_shares) * per_request:.0f} "
            f"· {postgres * per_request:.0f} |"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    # The replicas' access log would cost CPU in every replica; the launcher's
    # children inherit this.
    os.environ.setdefault("EXECGATE_ACCESS_LOG", "0")
    with database(args.store) as (store_url, postmaster), tempfile.TemporaryDirectory() as tmp:
        demo = await seed_demo(store_url, Path(tmp) / "demo-key")
        measurements = []
        for _ in range(args.rounds):
            for replicas in (1, args.replicas):
                measurement = await measure(store_url, postmaster, demo, replicas, args)
                print(
                    f"{replicas} replica(s): {measurement.load.throughput:,.0f} req/s",
                    file=sys.stderr,
                )
                measurements.append(measurement)
    print(f"{os.cpu_count()} CPUs, {args.connections} connections, {args.duration} s per run\n")
    print(report(measurements))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    parser.add_argument("--store", help="postgresql://… (default: a throwaway local cluster)")
    parser.add_argument("--replicas", type=int, default=3, help="compared with 1 (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--rounds", type=int, default=1, help="1-vs-N pairs (default 1)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
