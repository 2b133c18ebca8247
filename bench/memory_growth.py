"""Gateway memory under the benchmark's mixed load, read at request-count checkpoints.

    python -m bench.memory_growth [CONFIG ...] [--checkpoints 10000,25000,50000,100000]
        [--connections 64] [--case mix|10|1000|miss] [--rest-seconds 5]

A CONFIG is a gateway variant of `bench.experiments.variants` (`+` joins several;
default: `base`, the product as `python -m gateway` runs it). Every config gets its
own gateway process, all on one service (the product's) and one seeded SQLite file;
`mallinfo` is added to each, so glibc's own totals are read too. The configs take
turns: each is loaded up to the next checkpoint before any goes further, so drift
hits all alike.

At each checkpoint, once the gateway is idle (and `--rest-seconds` later): VmRSS, anonymous memory
(`smaps_rollup`), thread count, and mallinfo2 over all arenas: `arena` (bytes the
arenas got from the OS with brk/mmap-ed heaps), `in use` (uordblks: allocated
chunks) and `free` (fordblks: free chunks still held). Growth of `in use` is
memory someone holds (a leak, or a cache); growth of `free` with flat `in use` is
the allocator keeping freed memory (fragmentation, arenas per thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.cases import Case, cases_for
from bench.proc_stats import wait_until_idle
from bench.processes import ProcessSet, ServerProcess, free_port, python_module_command
from bench.stack import fetch_when_ready, seed_demo, start_service
from bench.wrk import run_wrk

_PROC = Path("/proc")
_CASES = {"10": "10 docs", "1000": "1000 docs", "miss": "404 miss"}
_LOAD_STEP_S = 1  # one wrk run; a checkpoint is read after the step that reaches it


@dataclass(frozen=True, slots=True)
class Reading:
    requests: int
    rss_kib: int
    anonymous_kib: int
    threads: int
    arena_kib: int
    in_use_kib: int
    free_kib: int
    mmapped_kib: int
    cancelled: int  # upstream calls that ended CANCELLED (client gone mid-request)


@dataclass(slots=True)
class Gateway:
    config: str
    process: ServerProcess
    url: str
    requests: int = 0


def _status_value(pid: int, key: str) -> int:
    for line in (_PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _anonymous_kib(pid: int) -> int:
    for line in (_PROC / str(pid) / "smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1])
    return 0


def _mallinfo(pid: int) -> dict[str, int]:
    """The gateway's last mallinfo2 dump (variant `mallinfo`); waits for a fresh one."""
    path = Path(tempfile.gettempdir()) / f"execgate-mallinfo-{pid}.json"
    time.sleep(0.6)  # the dump is rewritten every 0.5 s
    data: dict[str, int] = json.loads(path.read_text())
    return data


def read(gateway: Gateway) -> Reading:
    pid = gateway.process.pid
    info = _mallinfo(pid)
    return Reading(
        requests=gateway.requests,
        rss_kib=_status_value(pid, "VmRSS"),
        anonymous_kib=_anonymous_kib(pid),
        threads=_status_value(pid, "Threads"),
        arena_kib=info["arena"] // 1024,
        in_use_kib=info["uordblks"] // 1024,
        free_kib=info["fordblks"] // 1024,
        mmapped_kib=info["hblkhd"] // 1024,
        cancelled=_cancelled_calls(gateway.url),
    )


def _cancelled_calls(url: str) -> int:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("execgate_gateway_upstream_errors") and 'grpc_code="CANCELLED"' in line
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("configs", nargs="*", default=["base"])
    parser.add_argument("--checkpoints", default="10000,25000,50000,100000")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--case", default="mix", choices=["mix", *_CASES])
    parser.add_argument(
        "--rest-seconds",
        type=float,
        default=0.0,
        help="after the load, wait this long before reading (the gateway gives free heap "
        "back after 2-4 s idle: runtime/memory_release.py)",
    )
    args = parser.parse_args(argv)
    checkpoints = [int(part) for part in args.checkpoints.split(",")]

    with tempfile.TemporaryDirectory(prefix="execgate-memory-") as work:
        work_dir = Path(work)
        with ProcessSet(work_dir) as processes:
            store_url = f"sqlite:///{work_dir / 'memory.db'}"
            demo = seed_demo(store_url)
            all_cases = cases_for(demo)
            cases = (
                all_cases
                if args.case == "mix"
                else [c for c in all_cases if c.name == _CASES[args.case]]
            )
            service, service_address = start_service(processes, store_url)
            gateways = [
                _start_gateway(processes, index, config, service_address, cases, demo.http_headers)
                for index, config in enumerate(args.configs)
            ]
            readings: dict[str, list[Reading]] = {g.config: [read(g)] for g in gateways}
            for checkpoint in checkpoints:
                for gateway in gateways:
                    _load_until(gateway, checkpoint, cases, args.connections, demo.http_headers)
                    wait_until_idle([gateway.process.pid])
                    time.sleep(args.rest_seconds)
                    readings[gateway.config].append(read(gateway))
                    _progress(gateway.config, readings[gateway.config][-1])
                    service.check_alive()
    _print_table(readings)
    return 0


def _start_gateway(
    processes: ProcessSet,
    index: int,
    config: str,
    service_address: str,
    cases: list[Case],
    headers: dict[str, str],
) -> Gateway:
    port = free_port()
    process = processes.start(
        f"gateway{index}",
        python_module_command(
            "bench.experiments.launch",
            "gateway",
            f"{config}+mallinfo",
            "--",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--backend",
            service_address,
        ),
    )
    process.wait_for_port(port)
    url = f"http://127.0.0.1:{port}"
    for case in cases:
        answer = fetch_when_ready(process, url + case.path, headers)
        if answer.status != case.expected_http:
            raise SystemExit(f"{config}: {case.name} answered {answer.status}")
    time.sleep(1.0)  # the first mallinfo dump
    return Gateway(config, process, url, requests=len(cases))


def _load_until(
    gateway: Gateway, count: int, cases: list[Case], connections: int, headers: dict[str, str]
) -> None:
    while gateway.requests < count:
        result = run_wrk(
            gateway.url,
            [case.path for case in cases],
            connections=connections,
            duration_s=_LOAD_STEP_S,
            headers=headers,
            expected_status=cases[0].expected_http,
        )
        gateway.requests += result.requests
        gateway.process.check_alive()


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def _progress(config: str, reading: Reading) -> None:
    print(
        f"{config}: {reading.requests} requests, RSS {_mib(reading.rss_kib)} MiB, "
        f"malloc in use {_mib(reading.in_use_kib)} free {_mib(reading.free_kib)}",
        file=sys.stderr,
        flush=True,
    )


def _print_table(readings: dict[str, list[Reading]]) -> None:
    columns = (
        "requests",
        "RSS",
        "anon",
        "threads",
        "arena",
        "in use",
        "free",
        "mmapped",
        "cancelled",
    )
    print("MiB; arena/in use/free/mmapped: glibc mallinfo2 over all arenas")
    for config, rows in readings.items():
        print(f"\n{config}")
        print(" ".join(f"{c:>9}" for c in columns))
        for r in rows:
            values = (
                str(r.requests),
                _mib(r.rss_kib),
                _mib(r.anonymous_kib),
                str(r.threads),
                _mib(r.arena_kib),
                _mib(r.in_use_kib),
                _mib(r.free_kib),
                _mib(r.mmapped_kib),
                str(r.cancelled),
            )
            print(" ".join(f"{v:>9}" for v in values))
        if len(rows) >= 3:
            first, last = rows[1], rows[-1]
            print(
                f"RSS after {last.requests} over after {first.requests}: "
                f"{last.rss_kib / first.rss_kib - 1:+.1%}"
            )


if __name__ == "__main__":
    sys.exit(main())
