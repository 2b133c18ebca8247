"""Micro-benchmark: what counting a request costs with several workers, and what a scrape costs.

    python -m bench.micro_worker_metrics [--repeat N]

Per request (one counter bump and one histogram observation, as the gateway does):
- `execgate`: `GatewayMetrics.observe_request`, the same code with one worker or many
  (workers are merged at scrape time, `observability/worker_metrics.py`);
- `prometheus-client`: its Counter + Histogram in one process;
- `prometheus-client multiprocess`: the same with `PROMETHEUS_MULTIPROC_DIR` set
  (values in mmap files), measured in a child interpreter because prometheus-client
  picks its value class at import.
Per scrape: `WorkerMetricsSharing.exposition()` with 1, 2 and 4 workers on Unix sockets
(each worker holding the label sets a busy gateway has).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gateway.metrics import GatewayMetrics
from observability.worker_metrics import WorkerMetricsSharing
from runtime.worker import Worker

ROUTE = "/v1/retrievers/{retriever_id}/executions/{execution_id}"

_PROMETHEUS_LOOP = """
import os, sys, time
from prometheus_client import Counter, Histogram
requests = Counter("r", "r", ("route", "method", "status"))
seconds = Histogram("s", "s", ("route", "method"))
n = int(sys.argv[1])
start = time.process_time()
for _ in range(n):
    requests.labels("{route}", "GET", "200").inc()
    seconds.labels("{route}", "GET").observe(0.0012)
print((time.process_time() - start) / n * 1e6)
""".replace("{route}", ROUTE)


def execgate_us(repeat: int) -> float:
    metrics = GatewayMetrics()
    start = time.process_time()
    for _ in range(repeat):
        metrics.observe_request(ROUTE, "GET", 200, 0.0012)
    return (time.process_time() - start) / repeat * 1e6


def prometheus_us(repeat: int, multiprocess_dir: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiprocess_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir
    done = subprocess.run(
        [sys.executable, "-c", _PROMETHEUS_LOOP, str(repeat)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout)


def _busy_metrics() -> GatewayMetrics:
    metrics = GatewayMetrics()
    for status in (200, 404, 401, 503):
        for route in (ROUTE, "/healthz", "/readyz", "/metrics", "unmatched"):
            metrics.observe_request(route, "GET", status, 0.0012)
    metrics.observe_upstream("/execgate.retrievers.v1.ExecutionService/GetExecution", "OK", 0.001)
    return metrics


async def scrape_ms(workers: int, scrapes: int) -> float:
    with tempfile.TemporaryDirectory(prefix="eg-bench-") as name:
        directory = Path(name)
        sharing = [
            WorkerMetricsSharing(
                Worker(i, directory, os.getpid()), "gw", _busy_metrics().exposition
            )
            for i in range(workers)
        ]
        for one in sharing:
            await one.start()
        try:
            start = time.perf_counter()
            for _ in range(scrapes):
                await sharing[0].exposition()
            return (time.perf_counter() - start) / scrapes * 1e3
        finally:
            for one in sharing:
                await one.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=200_000, help="requests counted per figure")
    args = parser.parse_args()
    print(f"per request ({args.repeat:,} counted), CPU µs:")
    print(f"  execgate (1 or N workers)        {execgate_us(args.repeat):8.2f}")
    print(f"  prometheus-client                {prometheus_us(args.repeat, None):8.2f}")
    with tempfile.TemporaryDirectory(prefix="eg-prom-") as directory:
        multiprocess = prometheus_us(args.repeat, directory)
    print(f"  prometheus-client multiprocess   {multiprocess:8.2f}")
    print("per scrape, wall ms (the answering worker reads its siblings over Unix sockets):")
    for workers in (1, 2, 4):
        milliseconds = asyncio.run(scrape_ms(workers, 200))
        print(f"  {workers} worker(s)                      {milliseconds:8.2f}")


if __name__ == "__main__":
    main()
