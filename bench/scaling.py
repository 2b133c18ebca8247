"""`python -m bench.scaling`: how execgate scales with `--workers` on this machine.

For single-process mode (`python -m singleprocess serve --workers n`) and for the
two tiers (`python -m gateway serve --workers n` in front of `python -m service
serve --workers n`), n = 1 … the CPUs this process may use, it runs wrk against
the 10-document, 1,000-document and 404 GETs and prints req/s, whole-machine CPU
per request (everything on the box, wrk and any other load included, from
/proc/stat), the servers' own CPU per request (their process groups), p50/p99
and efficiency (req/s per worker relative to one worker). Then single-process mode
with one worker against the peer gateway (`bench/peer_gateway.py`, on a service
of its own), measured alternately in rounds (`run_pairs`), and the ratios issue 11's
"Done when" names.

    python -m bench.scaling            # full: ~7 minutes on 2 CPUs
    python -m bench.scaling --short    # seconds-long runs; proves the harness (CI)

Load generator and servers share the machine: the figures are for that setup.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cases import Case, Demo, cases_for
from bench.load_result import LoadResult
from bench.proc_stats import group_cpu_seconds, process_cpu_seconds, rss_kib_by_pid
from bench.processes import (
    HarnessError,
    ProcessSet,
    ServerProcess,
    free_port,
    python_module_command,
)
from bench.stack import READY_TIMEOUT_S, fetch_when_ready, seed_demo, start_service
from bench.wrk import run_wrk
from runtime.cpus import available_cpus
from runtime.settings import (
    CommandParser,
    Setting,
    boolean,
    integer,
    parse_settings,
)

CONNECTIONS = 64


@dataclass(frozen=True, slots=True)
class Plan:
    duration_s: int
    warmup_s: int
    pairs: int  # rounds of the paired comparison with the peer


FULL = Plan(duration_s=8, warmup_s=2, pairs=3)
SHORT = Plan(duration_s=1, warmup_s=1, pairs=1)


@dataclass(frozen=True, slots=True)
class Row:
    deployment: str
    workers: int
    case: str
    result: LoadResult
    machine_cpu_s: float
    server_cpu_s: float  # the deployment's own processes (supervisors and workers)

    @property
    def cpu_per_request_us(self) -> float:
        return self._per_request_us(self.machine_cpu_s)

    @property
    def server_cpu_per_request_us(self) -> float:
        return self._per_request_us(self.server_cpu_s)

    def _per_request_us(self, seconds: float) -> float:
        return seconds / self.result.requests * 1e6 if self.result.requests else 0.0


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (all CPUs, every process)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Deployment:
    """Servers started for one configuration, stopped on `close`."""

    def __init__(self, name: str, workers: int, url: str, servers: list[ServerProcess]) -> None:
        self.name = name
        self.workers = workers
        self.url = url
        self.servers = servers

    def cpu_seconds(self) -> float:
        """CPU spent so far by every process of this deployment (each server's process group)."""
        return sum(group_cpu_seconds(server.pid) for server in self.servers)

    def memory_line(self) -> str:
        """Each server's resident memory: its supervisor (when it has workers) and workers,
        with each worker's CPU time so far."""
        parts = []
        for server in self.servers:
            sizes = rss_kib_by_pid(server.pid)
            workers = [kib for pid, kib in sorted(sizes.items()) if pid != server.pid]
            if workers:
                shown = ", ".join(f"{kib / 1024:.0f}" for kib in workers)
                # How evenly SO_REUSEPORT spread the load: each worker's CPU so far.
                cpu = ", ".join(
                    f"{process_cpu_seconds(pid):.1f}" for pid in sorted(sizes) if pid != server.pid
                )
                parts.append(
                    f"{server.name}: supervisor {sizes.get(server.pid, 0) / 1024:.0f} MiB, "
                    f"workers {shown} MiB (CPU {cpu} s)"
                )
            else:
                parts.append(f"{server.name}: {sizes.get(server.pid, 0) / 1024:.0f} MiB")
        return "  RSS after load: " + "; ".join(parts)

    def close(self) -> None:
        for server in reversed(self.servers):  # the front before the service it calls
            server.stop()


def wait_all_workers(server: ServerProcess, workers: int) -> None:
    """Until the supervisor logs that every worker listens (at once with one worker)."""
    if workers == 1:
        return
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        server.check_alive()
        if '"all workers ready"' in server.log_path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise HarnessError(f"{server.name}: not all {workers} workers ready:\n{server.log_tail()}")


def start_single(log_dir: Path, store_url: str, workers: int) -> Deployment:
    port = free_port()
    server = ServerProcess(
        f"single-{workers}",
        python_module_command(
            "singleprocess",
            *("serve", "--listen", f"127.0.0.1:{port}", "--grpc-listen", "off"),
            *("--store", store_url, "--workers", str(workers)),
        ),
        log_dir,
    )
    try:
        server.wait_for_port(port, READY_TIMEOUT_S)
        wait_all_workers(server, workers)
    except BaseException:
        server.stop()
        raise
    return Deployment("single-process", workers, f"http://127.0.0.1:{port}", [server])


def start_two_tier(log_dir: Path, store_url: str, workers: int) -> Deployment:
    service_port, gateway_port = free_port(), free_port()
    servers = []
    try:
        service = ServerProcess(
            f"service-{workers}",
            python_module_command(
                "service",
                *("serve", "--listen", f"127.0.0.1:{service_port}"),
                *("--store", store_url, "--workers", str(workers)),
            ),
            log_dir,
        )
        servers.append(service)
        service.wait_for_port(service_port, READY_TIMEOUT_S)
        wait_all_workers(service, workers)
        gateway = ServerProcess(
            f"gateway-{workers}",
            python_module_command(
                "gateway",
                *("serve", "--listen", f"127.0.0.1:{gateway_port}"),
                *("--backend", f"127.0.0.1:{service_port}", "--workers", str(workers)),
            ),
            log_dir,
        )
        servers.append(gateway)
        gateway.wait_for_port(gateway_port, READY_TIMEOUT_S)
        wait_all_workers(gateway, workers)
    except BaseException:
        for server in reversed(servers):
            server.stop()
        raise
    return Deployment("two-tier", workers, f"http://127.0.0.1:{gateway_port}", servers)


def start_peer(log_dir: Path, store_url: str, workers: int) -> Deployment:
    """The peer gateway on a one-process service of its own."""
    processes = ProcessSet(log_dir)
    service, address = start_service(processes, store_url, name="peer-service")
    port = free_port()
    peer = ServerProcess(
        "peer",
        python_module_command(
            "bench.peer_gateway", "--listen", f"127.0.0.1:{port}", "--backend", address
        ),
        log_dir,
    )
    try:
        peer.wait_for_port(port, READY_TIMEOUT_S)
    except BaseException:
        peer.stop()
        service.stop()
        raise
    return Deployment("peer", 1, f"http://127.0.0.1:{port}", [service, peer])


def measure_case(deployment: Deployment, case: Case, demo: Demo, plan: Plan) -> Row:
    server = deployment.servers[-1]
    fetched = fetch_when_ready(server, deployment.url + case.path, demo.http_headers)
    if fetched.status != case.expected_http:
        raise HarnessError(
            f"{deployment.name}: {case.name} answered {fetched.status}, "
            f"expected {case.expected_http}: {fetched.body[:300]!r}"
        )

    def load(duration_s: int) -> LoadResult:
        return run_wrk(
            deployment.url,
            [case.path],
            connections=CONNECTIONS,
            duration_s=duration_s,
            headers=demo.http_headers,
            expected_status=case.expected_http,
        )

    load(plan.warmup_s)
    before, server_before = machine_busy_seconds(), deployment.cpu_seconds()
    result = load(plan.duration_s)
    spent = machine_busy_seconds() - before
    server_spent = deployment.cpu_seconds() - server_before
    if result.unexpected:
        raise HarnessError(
            f"{deployment.name} with {deployment.workers} worker(s), {case.name}: "
            f"{result.unexpected} of {result.requests} answers were not {case.expected_http}"
        )
    return Row(deployment.name, deployment.workers, case.name, result, spent, server_spent)


@dataclass(frozen=True, slots=True)
class Pair:
    """One round of the paired comparison: single-process 1 worker, then the peer."""

    case: str
    single: Row
    peer: Row

    @property
    def ratio(self) -> float | None:
        peer = self.peer.result.throughput
        return self.single.result.throughput / peer if peer else None


def run(
    plan: Plan, max_workers: int, work_dir: Path, print_line: Callable[[str], None]
) -> tuple[list[Row], list[Pair]]:
    store_url = f"sqlite:///{work_dir / 'scaling.db'}"
    demo = seed_demo(store_url)
    cases = cases_for(demo)
    rows: list[Row] = []
    starts: list[tuple[Callable[[Path, str, int], Deployment], int]] = [
        *((start_single, n) for n in range(1, max_workers + 1)),
        *((start_two_tier, n) for n in range(1, max_workers + 1)),
        (start_peer, 1),
    ]
    for start, workers in starts:
        deployment = start(work_dir, store_url, workers)
        try:
            for case in cases:
                if deployment.name == "peer" and case.expected_http != 200:
                    # The peer is compared on the 200 cases only: `ratios`, and the
                    # figures in docs/performance.md, "Scaling benchmark".
                    continue
                row = measure_case(deployment, case, demo, plan)
                rows.append(row)
                print_line(_format_row(row, rows))
            print_line(deployment.memory_line())
        finally:
            deployment.close()
    compared = [case for case in cases if case.expected_http == 200]
    return rows, run_pairs(plan, work_dir, store_url, demo, compared, print_line)


def run_pairs(
    plan: Plan,
    work_dir: Path,
    store_url: str,
    demo: Demo,
    cases: Sequence[Case],
    print_line: Callable[[str], None],
) -> list[Pair]:
    """Single-process with one worker against the peer, measured alternately.

    The table measures them minutes apart, and this machine's speed drifts within minutes
    (by how much: docs/performance.md, "Scaling benchmark"), which bends a ratio of two
    runs as much. Alternating A, B, A, B … with both started bends both sides alike; the
    ratios reported are the median of the rounds.
    """
    single = start_single(work_dir, store_url, 1)
    try:
        peer = start_peer(work_dir, store_url, 1)
        try:
            pairs = []
            for case in cases:
                for _ in range(plan.pairs):
                    pair = Pair(
                        case.name,
                        measure_case(single, case, demo, plan),
                        measure_case(peer, case, demo, plan),
                    )
                    pairs.append(pair)
                    print_line(_format_pair(pair))
            return pairs
        finally:
            peer.close()
    finally:
        single.close()


def _format_pair(pair: Pair) -> str:
    shown = f"{pair.ratio:.2f}x" if pair.ratio is not None else "n/a"
    return (
        f"  paired, {pair.case:<10} single-process 1 worker {pair.single.result.throughput:>7,.0f}"
        f" req/s, peer {pair.peer.result.throughput:>6,.0f} req/s: {shown}"
    )


def median_ratio(pairs: Sequence[Pair], case: str) -> float | None:
    measured = [pair.ratio for pair in pairs if pair.case == case and pair.ratio is not None]
    return statistics.median(measured) if measured else None


HEADER = (
    f"{'deployment':<15}{'workers':>8}  {'case':<11}{'req/s':>9}{'CPU/req µs':>12}"
    f"{'servers µs':>12}"
    f"{'p50 ms':>9}{'p99 ms':>9}{'efficiency':>12}"
)


def _format_row(row: Row, rows: Sequence[Row]) -> str:
    one = _find(rows, row.deployment, 1, row.case)
    efficiency = (
        f"{row.result.throughput / row.workers / one.result.throughput:.2f}"
        if one is not None and one.result.throughput
        else "-"
    )
    return (
        f"{row.deployment:<15}{row.workers:>8}  {row.case:<11}{row.result.throughput:>9,.0f}"
        f"{row.cpu_per_request_us:>12,.0f}{row.server_cpu_per_request_us:>12,.0f}"
        f"{row.result.p50_us / 1000:>9.2f}"
        f"{row.result.p99_us / 1000:>9.2f}{efficiency:>12}"
    )


def _find(rows: Sequence[Row], deployment: str, workers: int, case: str) -> Row | None:
    for row in rows:
        if (row.deployment, row.workers, row.case) == (deployment, workers, case):
            return row
    return None


def ratios(
    rows: Sequence[Row], pairs: Sequence[Pair], max_workers: int
) -> list[tuple[str, float | None, float]]:
    """(what, measured ratio, goal) for issue 11's "Done when" (against the peer: the
    median of the paired rounds)."""

    def rate(deployment: str, workers: int, case: str) -> float | None:
        row = _find(rows, deployment, workers, case)
        return row.result.throughput if row is not None else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    checks = [
        ("single-process 1 worker / peer, 10 docs", median_ratio(pairs, "10 docs"), 3.0),
        ("single-process 1 worker / peer, 1000 docs", median_ratio(pairs, "1000 docs"), 20.0),
    ]
    if max_workers >= 2:
        checks.insert(
            0,
            (
                "single-process 2 workers / 1 worker, 10 docs",
                ratio(rate("single-process", 2, "10 docs"), rate("single-process", 1, "10 docs")),
                1.4,
            ),
        )
    return checks


ENV_PREFIX = "EXECGATE_BENCH_SCALING_"
OPTIONS: tuple[Setting[Any], ...] = (
    Setting("--short", f"{ENV_PREFIX}SHORT", boolean, False, "seconds-long runs (CI)"),
    Setting(
        "--max-workers",
        f"{ENV_PREFIX}MAX_WORKERS",
        integer,
        0,
        "largest worker count measured; 0: the CPUs this process may use",
    ),
    Setting(
        "--duration-seconds",
        f"{ENV_PREFIX}DURATION_SECONDS",
        integer,
        0,
        "per measurement; 0: the mode's",
        former=(("--duration", f"{ENV_PREFIX}DURATION"),),
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m bench.scaling", description="execgate's throughput by number of workers."
    )
    given = parse_settings(parser, OPTIONS, argv)
    max_workers: int = given["max_workers"] or available_cpus()
    plan = SHORT if given["short"] else FULL
    if given["duration_seconds"]:
        plan = Plan(given["duration_seconds"], plan.warmup_s, plan.pairs)
    load_1m = os.getloadavg()[0]
    print(
        f"execgate scaling: {max_workers} worker(s) max, {CONNECTIONS} connections, "
        f"{plan.duration_s} s per run, {os.cpu_count()} CPUs, load average {load_1m:.2f} "
        "(wrk on the same machine)"
    )
    print(HEADER)
    try:
        with tempfile.TemporaryDirectory(prefix="execgate-scaling-") as work:
            rows, pairs = run(plan, max_workers, Path(work), print)
    except HarnessError as error:
        print(f"scaling benchmark failed: {error}", file=sys.stderr)
        return 1
    print()
    for what, measured, goal in ratios(rows, pairs, max_workers):
        shown = f"{measured:.2f}x" if measured is not None else "n/a"
        verdict = "" if measured is None else ("met" if measured >= goal else "NOT met")
        print(f"{what:<48} {shown:>8}  (goal >= {goal}x) {verdict}")
    # Less disturbed by other load on the machine than req/s: CPU the servers spent per request.
    print("servers' CPU per request, peer / single-process 1 worker:")
    for case in ("10 docs", "1000 docs"):
        single, peer = _find(rows, "single-process", 1, case), _find(rows, "peer", 1, case)
        if (
            single is not None
            and peer is not None
            and single.server_cpu_per_request_us
            and peer.server_cpu_per_request_us  # 0 when the peer answered nothing in time
        ):
            ratio = peer.server_cpu_per_request_us / single.server_cpu_per_request_us
            print(f"  {case:<10} {ratio:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
