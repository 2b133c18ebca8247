"""Merging the metrics of several workers: sums per sample, over real Unix sockets."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import GatewayMetrics
from observability.worker_metrics import WorkerMetricsSharing, merge_expositions
from runtime.worker import Worker


def _samples(exposition: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
    }


def test_counters_histograms_and_gauges_add_up() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    first.observe_request("/a", "GET", 200, 0.002)
    second.observe_request("/a", "GET", 200, 0.02)
    second.observe_request("/b", "GET", 404, 0.0001)
    first.in_flight, second.in_flight = 2, 3
    samples = _samples(merge_expositions([first.exposition(), second.exposition()]))

    route_a = (("method", "GET"), ("route", "/a"))
    assert samples[("http_requests_total", (("code", "200"), *route_a))] == 2
    hist = "http_request_duration_seconds"
    assert samples[(f"{hist}_count", route_a)] == 2
    assert samples[(f"{hist}_sum", route_a)] == pytest.approx(0.022)
    assert samples[(f"{hist}_bucket", (("le", "0.0025"), *route_a))] == 1
    assert samples[(f"{hist}_bucket", (("le", "+Inf"), *route_a))] == 2
    route_b = (("code", "404"), ("method", "GET"), ("route", "/b"))
    assert samples[("http_requests_total", route_b)] == 1
    assert samples[("http_requests_in_flight", ())] == 5
    assert samples[("execgate_metrics_workers", ())] == 2


def test_process_metrics_add_up_except_start_time_and_fd_limit() -> None:
    def process(start: float, fds: int, memory: int) -> bytes:
        return (
            f"# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {start}\n"
            f"# TYPE process_max_fds gauge\nprocess_max_fds 1024\n"
            f"# TYPE process_open_fds gauge\nprocess_open_fds {fds}\n"
            f"# TYPE process_resident_memory_bytes gauge\n"
            f"process_resident_memory_bytes {memory}\n"
        ).encode()

    samples = _samples(merge_expositions([process(100.0, 10, 5000), process(90.0, 12, 7000)]))
    assert samples[("process_start_time_seconds", ())] == 90.0
    assert samples[("process_max_fds", ())] == 1024
    assert samples[("process_open_fds", ())] == 22
    assert samples[("process_resident_memory_bytes", ())] == 12000


@pytest.fixture
def directory() -> Iterator[Path]:
    # Short: a Unix socket path must stay under ~108 bytes, pytest's tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="eg-") as name:
        yield Path(name)


@pytest.mark.asyncio
async def test_a_scrape_of_one_worker_merges_every_sibling_that_answers(directory: Path) -> None:
    metrics = [GatewayMetrics() for _ in range(3)]
    for count, worker_metrics in enumerate(metrics, start=1):
        for _ in range(count):
            worker_metrics.observe_request("/a", "GET", 200, 0.001)
    sharing = [
        WorkerMetricsSharing(Worker(index, directory, os.getpid()), "gw", m.exposition)
        for index, m in enumerate(metrics)
    ]
    for one in sharing:
        await one.start()
    key = ("http_requests_total", (("code", "200"), ("method", "GET"), ("route", "/a")))
    try:
        for one in sharing:  # whichever worker answers, the same whole-server count
            samples = _samples(await one.exposition())
            assert samples[key] == 1 + 2 + 3
            assert samples[("execgate_metrics_workers", ())] == 3
        await sharing[2].stop()  # a worker gone: left out, the scrape still answers
        samples = _samples(await sharing[0].exposition())
        assert samples[key] == 1 + 2
        assert samples[("execgate_metrics_workers", ())] == 2
    finally:
        for one in sharing:
            await one.stop()


@pytest.mark.asyncio
async def test_a_stale_socket_of_a_dead_worker_is_skipped(directory: Path) -> None:
    (directory / "gw-metrics-7.sock").write_bytes(b"")  # not a socket: connect fails
    metrics = GatewayMetrics()
    metrics.observe_request("/a", "GET", 200, 0.001)
    sharing = WorkerMetricsSharing(Worker(0, directory, os.getpid()), "gw", metrics.exposition)
    await sharing.start()
    try:
        samples = _samples(await sharing.exposition())
    finally:
        await sharing.stop()
    assert samples[("execgate_metrics_workers", ())] == 1
