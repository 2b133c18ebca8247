"""Many concurrent SSE watchers on one gateway: delivery latency and memory per idle watcher.

    python -m bench.watchers                   # 1,000 watchers of one execution, 20 events
    python -m bench.watchers --short           # 20 watchers, 3 events (proves the harness)
    python -m bench.watchers --source library  # the test-only WatchShelfEvents instead

Processes on 127.0.0.1: the backend (`bench.watch_sources`) and one gateway
(`python -m gateway serve`), streams served by its generic streaming dispatcher.

1. Watchers connect (`Accept: text/event-stream`) in batches until every one
   has its first event; the gateway's RSS before and after, once idle, gives
   the memory per idle watcher.
2. A writer makes one event at a time; each watcher notes when each arrived.
   Latency = arrival minus the moment the writer SENT the write, so it
   includes the write and its commit: an upper bound of commit-to-delivery.
   Every watcher must get every event, in order.

Watchers are raw asyncio protocols (no HTTP client library) so that the
measuring process spends microseconds per event and the figures are the gateway's.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load_result import percentile
from bench.proc_stats import group_cpu_seconds, group_rss_kib, wait_until_idle
from bench.processes import ProcessSet, ServerProcess
from bench.stack import start_gateway
from bench.watch_sources import SOURCES, Source
from runtime.settings import (
    CommandParser,
    Setting,
    boolean,
    choice,
    count,
    parse_settings,
)

CONNECT_BATCH = 100
DELIVERY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Plan:
    watchers: int
    events: int
    interval_s: float


FULL = Plan(watchers=1000, events=20, interval_s=1.0)
SHORT = Plan(watchers=20, events=3, interval_s=0.1)


class Watcher(asyncio.Protocol):
    """One SSE connection; records when each write's event (by write number) arrived."""

    def __init__(self, request: bytes, marker: bytes, end: bytes) -> None:
        self._request = request
        self._marker = marker
        self._end = end
        self._buffer = b""
        self.status: int | None = None
        self.snapshot = asyncio.get_running_loop().create_future()
        self.arrivals: dict[int, float] = {}
        self.order: list[int] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self._buffer += data
        if self.status is None:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            self.status = int(head.split(b" ", 2)[1])
            self._buffer = rest
        # Chunked framing lines sit between events; events themselves are whole
        # within a chunk (one write each), so only complete `\n\n` blocks are read.
        *blocks, self._buffer = self._buffer.split(b"\n\n")
        for block in blocks:
            if b"event: snapshot" in block and not self.snapshot.done():
                self.snapshot.set_result(None)
            found = block.find(self._marker)
            if found >= 0:
                start = found + len(self._marker)
                number = int(block[start : block.index(self._end, start)])
                self.arrivals[number] = now
                self.order.append(number)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.snapshot.done():
            self.snapshot.set_exception(ConnectionError("closed before the snapshot"))


@dataclass
class Result:
    watchers: int
    events: int
    connect_s: float
    rss_before_kib: int
    rss_after_kib: int
    latencies_ms: list[float] = field(default_factory=list)
    missing: int = 0
    out_of_order: int = 0
    gateway_cpu_s: float = 0.0
    backend_cpu_s: float = 0.0
    watchers_cpu_s: float = 0.0  # this process: the watchers and the writer

    def summary(self) -> dict[str, Any]:
        latencies = self.latencies_ms  # empty when no event arrived: then `missing` says so
        return {
            "watchers": self.watchers,
            "events": self.events,
            "deliveries": len(latencies),
            "missing": self.missing,
            "out_of_order": self.out_of_order,
            "latency_ms_p50": round(percentile(latencies, 0.50), 2),
            "latency_ms_p99": round(percentile(latencies, 0.99), 2),
            "latency_ms_max": round(max(latencies, default=0.0), 2),
            "latency_ms_mean": round(statistics.fmean(latencies), 2) if latencies else 0.0,
            "connect_all_s": round(self.connect_s, 2),
            "gateway_rss_before_mib": round(self.rss_before_kib / 1024, 1),
            "gateway_rss_with_idle_watchers_mib": round(self.rss_after_kib / 1024, 1),
            "gateway_kib_per_idle_watcher": round(
                (self.rss_after_kib - self.rss_before_kib) / self.watchers, 1
            ),
            "gateway_cpu_s_during_events": round(self.gateway_cpu_s, 2),
            "gateway_cpu_us_per_delivery": round(self.gateway_cpu_s / max(len(latencies), 1) * 1e6),
            "backend_cpu_s_during_events": round(self.backend_cpu_s, 2),
            "watchers_cpu_s_during_events": round(self.watchers_cpu_s, 2),
            "load_average_1min": round(os.getloadavg()[0], 1),
        }


async def _run_watchers(
    plan: Plan, source: Source, gateway: ServerProcess, backend: ServerProcess, port: int
) -> Result:
    loop = asyncio.get_running_loop()
    path, headers = await source.prepare(f"http://127.0.0.1:{port}")
    lines = [f"GET {path} HTTP/1.1", "Host: bench", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    marker, end = source.marker, source.end
    wait_until_idle([gateway.pid])
    rss_before = group_rss_kib(gateway.pid)
    watchers: list[Watcher] = []
    started = time.monotonic()
    for first in range(0, plan.watchers, CONNECT_BATCH):
        batch = []
        for _ in range(min(CONNECT_BATCH, plan.watchers - first)):
            _, protocol = await loop.create_connection(
                lambda: Watcher(request, marker, end), "127.0.0.1", port
            )
            batch.append(protocol)
        await asyncio.wait_for(asyncio.gather(*(w.snapshot for w in batch)), 60)
        watchers += batch
    connect_s = time.monotonic() - started
    bad = [w.status for w in watchers if w.status != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} watchers were refused: {bad[:5]}")
    await asyncio.sleep(1.0)
    wait_until_idle([gateway.pid])
    rss_after = group_rss_kib(gateway.pid)

    cpu_before = group_cpu_seconds(gateway.pid), group_cpu_seconds(backend.pid)
    own_cpu_before = time.process_time()
    sent: dict[int, float] = {}
    for number in range(1, plan.events + 1):
        sent[number] = await source.write(number)
        await asyncio.sleep(plan.interval_s)
    for _ in range(int(DELIVERY_TIMEOUT_S / 0.05)):  # until all arrived, or give up
        if all(len(w.arrivals) == plan.events for w in watchers):
            break
        await asyncio.sleep(0.05)
    result = Result(
        plan.watchers,
        plan.events,
        connect_s,
        rss_before,
        rss_after,
        gateway_cpu_s=group_cpu_seconds(gateway.pid) - cpu_before[0],
        backend_cpu_s=group_cpu_seconds(backend.pid) - cpu_before[1],
        watchers_cpu_s=time.process_time() - own_cpu_before,
    )
    expected = sorted(sent)
    for watcher in watchers:
        for number, at in watcher.arrivals.items():
            result.latencies_ms.append((at - sent[number]) * 1000)
        result.missing += plan.events - len(watcher.arrivals)
        result.out_of_order += watcher.order != expected[: len(watcher.order)]
        if watcher.transport is not None:
            watcher.transport.close()
    await source.close()
    return result


def run(plan: Plan, source: Source, work_dir: Path) -> dict[str, Any]:
    with ProcessSet(work_dir) as processes:
        backend_address = source.start_backend(processes, work_dir, plan.watchers)
        gateway, gateway_address = start_gateway(
            processes,
            backend_address,
            command=source.gateway_command(),
            extra_args=(
                "--max-streams-per-key",
                str(plan.watchers + 10),
                # Every watcher connects from 127.0.0.1: one client address.
                "--max-connections-per-client",
                str(plan.watchers + 10),
                "--access-log",
                "false",
            ),
        )
        gateway_port = int(gateway_address.rsplit(":", 1)[1])
        assert source.backend is not None
        result = asyncio.run(_run_watchers(plan, source, gateway, source.backend, gateway_port))
        return {"source": source.name, **result.summary()}


ENV_PREFIX = "EXECGATE_BENCH_WATCHERS_"
OPTIONS: tuple[Setting[Any], ...] = (
    Setting("--short", f"{ENV_PREFIX}SHORT", boolean, False, "20 watchers, 3 events"),
    Setting(
        "--watchers", f"{ENV_PREFIX}WATCHERS", count, 0, "concurrent SSE watchers; 0: the mode's"
    ),
    Setting(
        "--events",
        f"{ENV_PREFIX}EVENTS",
        count,
        0,
        "events written while they watch; 0: the mode's",
    ),
    Setting(
        "--source",
        f"{ENV_PREFIX}SOURCE",
        choice(*sorted(SOURCES)),
        "execution",
        "what the watchers watch",
    ),
)


def main(argv: list[str] | None = None) -> None:
    parser = CommandParser(prog="python -m bench.watchers", description=__doc__)
    given = parse_settings(parser, OPTIONS, argv)
    plan = SHORT if given["short"] else FULL
    plan = Plan(given["watchers"] or plan.watchers, given["events"] or plan.events, plan.interval_s)
    with tempfile.TemporaryDirectory(prefix="execgate-watchers-") as work_dir:
        summary = run(plan, SOURCES[given["source"]](), Path(work_dir))
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if summary["missing"] or summary["out_of_order"]:
        raise SystemExit("some watchers missed events or got them out of order")


if __name__ == "__main__":
    main()
