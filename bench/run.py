"""`make bench`: execgate against the ceiling, a hand-written peer gateway and direct gRPC.

One run starts everything on 127.0.0.1 (free ports, a temporary SQLite store seeded
with the demo data), measures every target in interleaved rounds (so drift hits all
alike), stops everything it started (also on Ctrl-C or an error), prints one table
and writes the results as JSON. See bench/README.md for how to read it.

    python -m bench.run            # full: ~7 minutes
    python -m bench.run --short    # ~1 minute, proves the harness works (CI)
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.measure import Measurement, Target, measure
from bench.proc_stats import group_rss_kib, wait_until_idle
from bench.processes import REPO_ROOT, HarnessError, ProcessSet
from bench.stack import Stack, start_stack
from bench.wrk import run_wrk, wrk_executable, wrk_version
from runtime.settings import (
    CommandParser,
    Setting,
    boolean,
    integer,
    parse_settings,
)

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "latest.json"
CONNECTIONS = (1, 64)
MEMORY_PHASE_CONNECTIONS = 64
# RSS is read as a memory phase's load stops (the target) and again this long
# after, at rest (the gateway gives free heap back after 2-4 s without requests).
MEMORY_REST_S = 5.0
# Above this 1-minute load average before the run, other work is likely to skew the figures.
BUSY_LOAD_AVERAGE = 0.5


@dataclass(frozen=True, slots=True)
class Plan:
    mode: str
    duration_s: int  # per case, target, connection count and round
    rounds: int
    warmup_s: int  # mixed load on the peer and the ceiling before measuring
    memory_first: int  # gateway RSS is read after this many requests…
    memory_last: int | None  # …and after this many (None: not in this mode)
    memory_phase_limit_s: float  # a memory phase stops here even if short of its count


FULL = Plan("full", 5, 3, 2, 10_000, 100_000, 90.0)
SHORT = Plan("short", 1, 1, 1, 10_000, None, 5.0)


ENV_PREFIX = "EXECGATE_BENCH_"


def _optional_path(raw: str) -> Path | None:
    return Path(raw) if raw else None


OPTIONS: tuple[Setting[Any], ...] = (
    Setting("--short", f"{ENV_PREFIX}SHORT", boolean, False, "~1 minute; proves the harness"),
    Setting(
        "--duration-seconds",
        f"{ENV_PREFIX}DURATION_SECONDS",
        integer,
        0,
        "per measurement; 0: the mode's (5 full, 1 short)",
        former=(("--duration", f"{ENV_PREFIX}DURATION"),),
    ),
    Setting("--rounds", f"{ENV_PREFIX}ROUNDS", integer, 0, "interleaved rounds; 0: the mode's"),
    Setting("--output", f"{ENV_PREFIX}OUTPUT", Path, DEFAULT_OUTPUT, "results JSON", "PATH"),
    Setting(
        "--logs",
        f"{ENV_PREFIX}LOGS",
        _optional_path,
        None,
        "keep the servers' output in this directory (default: discard)",
        "DIR",
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m bench.run",
        description="Benchmark execgate against the ceiling, a naive peer gateway and direct gRPC.",
    )
    given = parse_settings(parser, OPTIONS, argv)
    plan = SHORT if given["short"] else FULL
    plan = Plan(
        plan.mode,
        given["duration_seconds"] or plan.duration_s,
        given["rounds"] or plan.rounds,
        plan.warmup_s,
        plan.memory_first,
        plan.memory_last,
        plan.memory_phase_limit_s,
    )
    output: Path = given["output"]
    try:
        wrk_executable()
        results = run(plan, given["logs"])
    except HarnessError as error:
        print(f"benchmark harness error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; everything the benchmark started has been stopped", file=sys.stderr)
        return 130
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {output}")
    return 0


def run(plan: Plan, logs: Path | None) -> dict[str, Any]:
    started = time.monotonic()
    load_at_start = os.getloadavg()
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="execgate-bench-") as work:
        measurements, memory, notes, meta = _run_in(Path(work), logs or Path(work), plan)
    meta["load_average_at_start"] = load_at_start
    meta["load_average_at_end"] = os.getloadavg()
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    if load_at_start[0] > BUSY_LOAD_AVERAGE:
        notes.append(
            f"the machine was busy before the run (1-minute load average {load_at_start[0]:.2f});"
            " figures include that interference"
        )
    rows = report.summarize(measurements)
    entries = report.ratios(rows, measurements)
    checks = report.target_checks(entries, memory)
    print(report.format_report(rows, entries, checks, memory, notes))
    return report.as_json(meta, measurements, rows, entries, checks, memory, notes)


def _run_in(
    work: Path, logs: Path, plan: Plan
) -> tuple[list[Measurement], report.Memory, list[str], dict[str, Any]]:
    with ProcessSet(logs) as processes:
        _progress(f"starting service, gateway, peer and ceiling ({plan.mode} mode)")
        stack = start_stack(processes, work)
        session = _Session(plan, stack)
        session.warm_up()
        session.measure_rounds()
        session.top_up_memory()
        return session.measurements, session.memory(), list(stack.notes), _meta(plan, stack)


class _Session:
    """The measuring part of one run, over an already started stack."""

    def __init__(self, plan: Plan, stack: Stack) -> None:
        self.plan = plan
        self.stack = stack
        self.measurements: list[Measurement] = []
        self.targets = [
            Target("ceiling", stack.ceiling_url, None, stack.ceiling.pid, None),
            Target("execgate", stack.gateway_url, None, stack.gateway.pid, stack.service.pid),
            Target("peer", stack.peer_url, None, stack.peer.pid, stack.service.pid),
            Target("direct gRPC", None, stack.service_address, None, stack.service.pid),
        ]
        servers = (stack.service, stack.gateway, stack.peer, stack.ceiling)
        self.server_groups = [server.pid for server in servers]
        self.gateway_requests = len(stack.cases)  # the start-up fetches
        self.rss_start = group_rss_kib(stack.gateway.pid)
        # (KiB as the load stopped, KiB at rest, after this many requests)
        self.rss_first: tuple[int, int, int] = (0, 0, 0)
        self.rss_last: tuple[int, int, int] | None = None

    def _mixed_load(self, url: str, duration_s: int) -> int:
        result = run_wrk(
            url,
            [case.path for case in self.stack.cases],
            connections=MEMORY_PHASE_CONNECTIONS,
            duration_s=duration_s,
            headers=self.stack.demo.http_headers,
            expected_status=200,
        )
        return result.requests

    def _load_gateway_until(self, count: int) -> tuple[int, int, int]:
        """Mixed load on the execgate gateway until it served `count` requests (or time is up).

        At least one mixed run, even when the count was already reached during the
        rounds: RSS depends on the last load (large bodies raise the heap's high-water
        mark), so both readings must follow the same mixed load to be comparable.
        """
        deadline = time.monotonic() + self.plan.memory_phase_limit_s
        while True:
            self.gateway_requests += self._mixed_load(self.stack.gateway_url, 1)
            if self.gateway_requests >= count or time.monotonic() >= deadline:
                break
        wait_until_idle([self.stack.gateway.pid])
        stopped = group_rss_kib(self.stack.gateway.pid)
        # At rest: the gateway returns free heap after 2-4 s without requests.
        time.sleep(MEMORY_REST_S)
        return stopped, group_rss_kib(self.stack.gateway.pid), self.gateway_requests

    def warm_up(self) -> None:
        _progress(f"gateway memory phase: mixed load up to {self.plan.memory_first} requests")
        self.rss_first = self._load_gateway_until(self.plan.memory_first)
        for url in (self.stack.peer_url, self.stack.ceiling_url):
            self._mixed_load(url, self.plan.warmup_s)

    def measure_rounds(self) -> None:
        cells = [(case, c) for case in self.stack.cases for c in CONNECTIONS]
        total = self.plan.rounds * len(cells) * len(self.targets)
        done = 0
        for round_index in range(self.plan.rounds):
            for cell_index, (case, connections) in enumerate(cells):
                # Rotate the order so that no target always runs first or last.
                shift = (round_index + cell_index) % len(self.targets)
                for target in self.targets[shift:] + self.targets[:shift]:
                    wait_until_idle(self.server_groups)
                    m = measure(
                        target,
                        case,
                        connections=connections,
                        duration_s=self.plan.duration_s,
                        round_index=round_index,
                        http_headers=self.stack.demo.http_headers,
                        grpc_metadata=self.stack.demo.grpc_metadata,
                    )
                    self.measurements.append(m)
                    if target.name == "execgate":
                        self.gateway_requests += m.result.requests
                    done += 1
                    _progress(
                        f"[{done}/{total}] round {round_index + 1} {case.name} @{connections} "
                        f"{target.name}: {m.result.throughput:.0f} req/s, "
                        f"p50 {m.result.p50_us / 1000:.3f} ms, unexpected {m.result.unexpected}"
                    )
                    for server in (self.stack.service, self.stack.gateway, self.stack.peer):
                        server.check_alive()

    def top_up_memory(self) -> None:
        if self.plan.memory_last is None:
            return
        _progress(f"gateway memory phase: mixed load up to {self.plan.memory_last} requests")
        self.rss_last = self._load_gateway_until(self.plan.memory_last)

    def memory(self) -> report.Memory:
        return report.Memory(
            start_kib=self.rss_start,
            after_first_kib=self.rss_first[0],
            after_first_requests=self.rss_first[2],
            after_last_kib=self.rss_last[0] if self.rss_last else None,
            after_last_requests=self.rss_last[2] if self.rss_last else None,
            after_first_rest_kib=self.rss_first[1],
            after_last_rest_kib=self.rss_last[1] if self.rss_last else None,
            rest_s=MEMORY_REST_S,
        )


_STARTED = time.monotonic()


def _progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:5.1f} s] {message}", file=sys.stderr, flush=True)


def _meta(plan: Plan, stack: Stack) -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        except OSError:  # no git (e.g. an unpacked tarball): the commit is just unknown
            return ""
        return done.stdout.strip()

    packages = ("grpcio", "protobuf", "aiohttp", "uvloop", "orjson")
    return {
        "mode": plan.mode,
        # The peer's JSON equals execgate's (as parsed JSON) for every case.
        "peer_body_matches_execgate": not stack.notes,
        "duration_s_per_measurement": plan.duration_s,
        "rounds": plan.rounds,
        "connections": list(CONNECTIONS),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "wrk": wrk_version(),
        "packages": {name: importlib.metadata.version(name) for name in packages},
        "cases": [
            {
                "name": case.name,
                "execution_id": case.execution_id,
                "http_status": stack.bodies[case.name].status,
                "body_bytes": len(stack.bodies[case.name].body),
            }
            for case in stack.cases
        ],
    }


if __name__ == "__main__":
    sys.exit(main())
