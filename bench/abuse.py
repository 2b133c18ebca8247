"""`make abuse`: a bounded abuse run against a real service and gateway on loopback.

Bounded in count and time (a few thousand requests, well under a minute) and on
127.0.0.x only; it stops by itself and exits 1 if a target is missed. Attackers use
their own loopback source addresses (127.0.0.2, 127.0.0.3), the well-behaved client
127.0.0.1, so the per-client connection cap is what separates them, as on a network.

1. Idle and slow connections beyond the cap: 250 idle connections from 127.0.0.2 and
   40 slowloris ones (a header byte every 0.5 s) from 127.0.0.3, per-client cap 200;
   while they are held (before the header timeout) a well-behaved client must get every
   answer, p99 under a second; then all of them are answered 408 and closed.
2. Slow readers: 40 connections ask for the largest execution 64 times (pipelined)
   and never read it;
   gateway RSS growth while they hang is bounded, and they are dropped after the
   send timeout.
3. 10x the in-flight bound: 10 times the gateway's `--max-in-flight` concurrent
   clients; the excess gets 503 `overloaded` fast, the admitted requests' p99 stays
   under a second, and both processes' RSS stays under `RSS_BOUND_MIB`.
Figures go to stdout (docs/performance.md, "Under abuse", quotes a run).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.cases import Demo
from bench.load_result import percentile
from bench.proc_stats import group_rss_kib
from bench.processes import ProcessSet, ServerProcess
from bench.stack import fetch_when_ready, seed_demo, start_gateway, start_service

MAX_IN_FLIGHT = 16
PER_CLIENT_CAP = 200  # above the flood's 160 connections from one address
HEADER_TIMEOUT_S = 5.0  # the well-behaved client is served within it
SEND_TIMEOUT_S = 3.0
IDLE_CONNECTIONS = 250  # from one address: 50 beyond the cap
SLOWLORIS_CONNECTIONS = 40
SLOW_READERS = 40
PIPELINED = 64  # requests per slow reader, ~340 KB answer each: more than kernel buffers hold
WELL_BEHAVED_REQUESTS = 200
FLOOD_REQUESTS = 4000
ADMITTED_P99_TARGET_S = 1.0
RSS_BOUND_MIB = 200  # each process, at any point of the run
SLOW_READER_GROWTH_BOUND_MIB = 96  # gateway, 40 readers: one answer (+ buffers) each


@dataclass
class Figures:
    failures: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(text, flush=True)

    def check(self, ok: bool, target: str) -> None:
        if not ok:
            self.failures.append(target)
            print(f"  MISSED: {target}", flush=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _rss_mib(server: ServerProcess) -> float:
    return group_rss_kib(server.pid) / 1024


async def _well_behaved(
    url: str, headers: dict[str, str], count: int
) -> tuple[Counter[int], list[float]]:
    statuses: Counter[int] = Counter()
    times: list[float] = []
    connector = aiohttp.TCPConnector(limit=4, local_addr=("127.0.0.1", 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(count):
            started = time.perf_counter()
            async with http.get(url, headers=headers) as response:
                await response.read()
                statuses[response.status] += 1
            times.append(time.perf_counter() - started)
    return statuses, times


async def _open(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    except OSError:
        return None


async def _final_answer(reader: asyncio.StreamReader) -> bytes:
    """What the server sends before it closes the connection (b"" if it never answers)."""
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        return await asyncio.wait_for(reader.read(), HEADER_TIMEOUT_S + 10)
    return b""


async def phase_connections(port: int, url: str, headers: dict[str, str], figures: Figures) -> None:
    figures.say("1. idle and slow connections beyond the cap, a well-behaved client meanwhile")
    idle = [c for c in [await _open(port, "127.0.0.2") for _ in range(IDLE_CONNECTIONS)] if c]
    slow = [c for c in [await _open(port, "127.0.0.3") for _ in range(SLOWLORIS_CONNECTIONS)] if c]
    opened_at = time.monotonic()
    stop = asyncio.Event()

    async def drip(writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            writer.write(b"GET /healthz HTTP/1.1\r\n")
            while not stop.is_set():
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.5)

    drips = [asyncio.create_task(drip(writer)) for _, writer in slow]
    # Served while every idle and slowloris connection is still held (header timeout).
    statuses, times = await _well_behaved(url, headers, WELL_BEHAVED_REQUESTS)
    served_within = time.monotonic() - opened_at
    answers = await asyncio.gather(*(_final_answer(reader) for reader, _ in [*idle, *slow]))
    stop.set()
    await asyncio.gather(*drips, return_exceptions=True)
    for _, writer in [*idle, *slow]:
        writer.close()
    idle_answers, slow_answers = answers[: len(idle)], answers[len(idle) :]
    refused = sum(a.startswith(b"HTTP/1.1 503") for a in idle_answers)
    held = sum(a.startswith(b"HTTP/1.1 408") for a in idle_answers)
    timed_out = sum(a.startswith(b"HTTP/1.1 408") for a in slow_answers)
    figures.say(
        f"   {IDLE_CONNECTIONS} idle connections from 127.0.0.2 (cap {PER_CLIENT_CAP}): "
        f"{refused} answered 503 too_many_connections at once, {held} held until the "
        f"header timeout ({HEADER_TIMEOUT_S:g} s), then 408"
    )
    figures.say(
        f"   {SLOWLORIS_CONNECTIONS} slowloris connections (a header byte every 0.5 s) from "
        f"127.0.0.3: {timed_out} answered 408 at the header timeout"
    )
    p99 = percentile(times, 0.99)
    figures.say(
        f"   meanwhile, within {served_within:.1f} s, {WELL_BEHAVED_REQUESTS} requests from "
        f"127.0.0.1: {dict(statuses)}, p50 {_ms(percentile(times, 0.5))}, p99 {_ms(p99)}"
    )
    figures.check(
        refused == IDLE_CONNECTIONS - PER_CLIENT_CAP, "connections beyond the cap get 503"
    )
    figures.check(held == PER_CLIENT_CAP, "idle connections time out with 408")
    figures.check(timed_out == len(slow), "slowloris connections time out with 408")
    figures.check(served_within < HEADER_TIMEOUT_S, "client served while the attack was held")
    figures.check(statuses == Counter({200: WELL_BEHAVED_REQUESTS}), "well-behaved client served")
    figures.check(p99 < ADMITTED_P99_TARGET_S, "well-behaved p99 under a second")


async def phase_slow_readers(
    port: int, path: str, headers: dict[str, str], gateway: ServerProcess, figures: Figures
) -> None:
    figures.say("2. slow readers")
    before = _rss_mib(gateway)
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    sockets = []
    for _ in range(SLOW_READERS):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(("127.0.0.4", 0))
        sock.connect(("127.0.0.1", port))
        # Pipelined: more answers than the kernel's socket buffers hold, so the rest
        # waits in the gateway until the client reads (it never does).
        sock.sendall((head + "\r\n").encode() * PIPELINED)
        sockets.append(sock)
        await asyncio.sleep(0.02)  # one at a time: under the in-flight bound, all answered
    await asyncio.sleep(1.0)
    during = _rss_mib(gateway)
    # Each is dropped once the gateway has waited SEND_TIMEOUT_S on it with an answer
    # it cannot send (after the kernel's socket buffers have filled).
    waited = time.monotonic()
    deadline = waited + SEND_TIMEOUT_S + 25
    open_sockets = set(sockets)
    while open_sockets and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        open_sockets = {sock for sock in open_sockets if not _dropped(sock)}
    dropped = SLOW_READERS - len(open_sockets)
    for sock in sockets:
        sock.close()
    figures.say(
        f"   {SLOW_READERS} clients never reading {PIPELINED} ~340 KB answers: gateway RSS "
        f"{before:.0f} -> {during:.0f} MiB while they hang; {dropped} dropped after the "
        f"send timeout ({SEND_TIMEOUT_S:g} s) within {time.monotonic() - waited:.1f} s"
    )
    figures.check(during - before < SLOW_READER_GROWTH_BOUND_MIB, "slow readers' memory bounded")
    figures.check(dropped == SLOW_READERS, "slow readers dropped after the send timeout")


def _dropped(sock: socket.socket) -> bool:
    """Whether the server closed or reset `sock` (what was sent before is discarded)."""
    sock.setblocking(False)
    try:
        while sock.recv(1 << 20):
            pass
    except BlockingIOError:
        return False  # open, nothing more to read now
    except OSError:
        return True  # reset
    return True  # end of stream


async def phase_flood(
    url: str,
    headers: dict[str, str],
    gateway: ServerProcess,
    service: ServerProcess,
    figures: Figures,
) -> None:
    clients = 10 * MAX_IN_FLIGHT
    figures.say(f"3. {clients} concurrent clients, 10x the gateway's in-flight bound")
    statuses: Counter[int] = Counter()
    admitted: list[float] = []
    shed: list[float] = []
    peak = {"gateway": _rss_mib(gateway), "service": _rss_mib(service)}
    remaining = FLOOD_REQUESTS
    connector = aiohttp.TCPConnector(limit=clients, local_addr=("127.0.0.5", 0))

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with http.get(url, headers=headers) as response:
                await response.read()
            elapsed = time.perf_counter() - started
            statuses[response.status] += 1
            (admitted if response.status == 200 else shed).append(elapsed)

    async def sample() -> None:
        while True:
            peak["gateway"] = max(peak["gateway"], _rss_mib(gateway))
            peak["service"] = max(peak["service"], _rss_mib(service))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    wall = time.perf_counter() - started
    sampler.cancel()
    figures.say(
        f"   {FLOOD_REQUESTS} requests in {wall:.1f} s: {dict(sorted(statuses.items()))}; "
        f"admitted p50 {_ms(percentile(admitted, 0.5))} p99 {_ms(percentile(admitted, 0.99))}; "
        f"503 p50 {_ms(percentile(shed, 0.5))} p99 {_ms(percentile(shed, 0.99))}"
    )
    figures.say(
        f"   peak RSS gateway {peak['gateway']:.0f} MiB, service {peak['service']:.0f} MiB "
        f"(bound {RSS_BOUND_MIB} MiB each)"
    )
    figures.check(set(statuses) <= {200, 503}, "only 200 and 503 answers")
    figures.check(statuses[503] > 0, "the excess is shed with 503")
    figures.check(percentile(admitted, 0.99) < ADMITTED_P99_TARGET_S, "admitted p99 under a second")
    figures.check(
        statistics.median(shed or [0.0]) < statistics.median(admitted or [1.0]),
        "503s faster than admitted answers",
    )
    figures.check(max(peak.values()) < RSS_BOUND_MIB, f"RSS under {RSS_BOUND_MIB} MiB")
    await asyncio.sleep(5.0)  # idle: both processes give free heap back
    figures.say(
        f"   after 5 s idle: gateway {_rss_mib(gateway):.0f} MiB, "
        f"service {_rss_mib(service):.0f} MiB"
    )


def _start_gateway(processes: ProcessSet, service_address: str) -> tuple[ServerProcess, int]:
    gateway, address = start_gateway(
        processes,
        service_address,
        extra_args=(
            "--access-log=off",
            "--max-in-flight",
            str(MAX_IN_FLIGHT),
            "--max-connections-per-client",
            str(PER_CLIENT_CAP),
            "--header-timeout-seconds",
            str(HEADER_TIMEOUT_S),
            "--send-timeout-seconds",
            str(SEND_TIMEOUT_S),
        ),
    )
    return gateway, int(address.rsplit(":", 1)[1])


async def run(gateway: ServerProcess, service: ServerProcess, port: int, demo: Demo) -> Figures:
    figures = Figures()
    headers = demo.http_headers
    base = f"http://127.0.0.1:{port}/v1/retrievers/{demo.retriever_id}/executions/"
    small = base + demo.executions["completed_10"]
    await phase_connections(port, small, headers, figures)
    large_path = small.replace(demo.executions["completed_10"], demo.executions["completed_1000"])
    await phase_slow_readers(port, large_path.split(f":{port}", 1)[1], headers, gateway, figures)
    await phase_flood(small, headers, gateway, service, figures)
    return figures


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="execgate-abuse-") as work:
        work_dir = Path(work)
        with ProcessSet(work_dir) as processes:
            store_url = f"sqlite:///{work_dir / 'abuse.db'}"
            demo = seed_demo(store_url)
            service, service_address = start_service(
                processes,
                store_url,
                extra_args=("--access-log=off",),
            )
            gateway, port = _start_gateway(processes, service_address)
            probe = f"http://127.0.0.1:{port}/v1/retrievers/{demo.retriever_id}/executions/"
            fetch_when_ready(gateway, probe + demo.executions["completed_10"], demo.http_headers)
            started = time.monotonic()
            figures = asyncio.run(asyncio.wait_for(run(gateway, service, port, demo), 120))
            figures.say(f"abuse run: {time.monotonic() - started:.0f} s")
    if figures.failures:
        print(f"abuse run: {len(figures.failures)} target(s) missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
