"""Prometheus metrics of the service: RPCs by method and code, RPC and store latency.

Same approach as the gateway's `gateway/metrics.py`, through the shared
`observability/`: per call only plain Python numbers in dicts are bumped, and
the metric families are built at scrape time (prometheus-client's own
Counter/Histogram children take a lock per value; docs/performance.md has what
each costs). Everything runs on the event loop thread, the scrape too
(`service.metrics_endpoint`), so no lock is needed.

Only the execution services are counted (their handlers share one guard);
health checks and reflection are not.

Names and labels are those of grpc-ecosystem's Prometheus middleware, so stock gRPC
dashboards work unchanged: `grpc_server_started_total`, `grpc_server_handled_total`
and the `grpc_server_handling_seconds` histogram, labelled `grpc_type`, `grpc_service`,
`grpc_method` (and `grpc_code`, spelt as in Go: `NotFound`); see
`observability/grpc_labels.py`. Process metrics (memory, CPU, open files) come with every
scrape (`observability/scraped_metrics.py`).

The buckets start lower than the gateway's: a whole RPC takes a fraction of a
millisecond and an SQLite lookup tens of microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from observability.grpc_labels import SERVER_STREAM, UNARY, go_code, split_method
from observability.histogram import Histograms, latency_buckets
from observability.scraped_metrics import ScrapedMetrics

_BUCKETS = latency_buckets(0.00005)


class ServiceMetrics(ScrapedMetrics):
    def __init__(self) -> None:
        self.in_flight = 0
        self.watch_streams = 0  # open WatchExecution streams (also in `in_flight`)
        self._types: dict[str, str] = {}  # full method → grpc_type, from `register`
        self._started: dict[str, int] = {}
        self._rpcs: dict[tuple[str, str], int] = {}
        self._rpc_seconds = Histograms[str](_BUCKETS)
        self._store_seconds = Histograms[str](_BUCKETS)
        self._store_errors: dict[tuple[str, str], int] = {}
        super().__init__()

    def register(self, grpc_method: str, server_streaming: bool) -> None:
        """Declare a method served (its `grpc_type`); at start-up, by the handler registry."""
        self._types[grpc_method] = SERVER_STREAM if server_streaming else UNARY

    def rpc_started(self, grpc_method: str) -> None:
        self._started[grpc_method] = self._started.get(grpc_method, 0) + 1

    def observe_rpc(self, grpc_method: str, grpc_code: str, seconds: float) -> None:
        """One finished RPC: `grpc_method` as on the wire (`/pkg.Service/Method`)."""
        key = (grpc_method, grpc_code)
        self._rpcs[key] = self._rpcs.get(key, 0) + 1
        self._rpc_seconds.observe(grpc_method, seconds)

    def requests_answered(self) -> int:
        """Every RPC answered so far (read when deciding the process is idle)."""
        return sum(self._rpcs.values())

    def observe_store(self, operation: str, seconds: float) -> None:
        self._store_seconds.observe(operation, seconds)

    def _labels(self, grpc_method: str) -> tuple[str, str, str]:
        return (self._types.get(grpc_method, UNARY), *split_method(grpc_method))

    def count_store_error(self, operation: str, error: str) -> None:
        key = (operation, error)
        self._store_errors[key] = self._store_errors.get(key, 0) + 1

    def families(self) -> Iterator[Metric]:
        method_labels = ("grpc_type", "grpc_service", "grpc_method")
        started = CounterMetricFamily(
            "grpc_server_started_total",
            "RPCs started on the server.",
            labels=method_labels,
        )
        for grpc_method, count in self._started.items():
            started.add_metric(self._labels(grpc_method), count)
        yield started
        handled = CounterMetricFamily(
            "grpc_server_handled_total",
            "RPCs completed on the server, whatever their status.",
            labels=(*method_labels, "grpc_code"),
        )
        for (grpc_method, code), count in self._rpcs.items():
            handled.add_metric((*self._labels(grpc_method), go_code(code)), count)
        yield handled
        handling = HistogramMetricFamily(
            "grpc_server_handling_seconds",
            "Time from a request's arrival at its handler to its answer (the whole stream "
            "for WatchExecution).",
            labels=method_labels,
        )
        for grpc_method, histogram in self._rpc_seconds.items():
            handling.add_metric(self._labels(grpc_method), histogram.cumulative(), histogram.total)
        yield handling
        yield GaugeMetricFamily(
            "execgate_service_rpcs_in_flight", "RPCs being handled.", self.in_flight
        )
        yield GaugeMetricFamily(
            "execgate_service_watch_streams",
            "WatchExecution streams open (each also counts in rpcs_in_flight).",
            self.watch_streams,
        )
        yield self._store_seconds.family(
            "execgate_service_store_duration_seconds",
            "Duration of store operations (failed ones too), by operation.",
            ("operation",),
        )
        store_errors = CounterMetricFamily(
            "execgate_service_store_errors",
            "Store operations that raised, by operation and error class.",
            labels=("operation", "error"),
        )
        for labels, count in self._store_errors.items():
            store_errors.add_metric(labels, count)
        yield store_errors
