"""Prometheus metrics of the gateway, served at `/metrics` by prometheus-client.

Names dashboards know: `http_requests_total{method,route,code}` and the
`http_request_duration_seconds{method,route}` histogram (route: the google.api.http
template or the gateway's own path, never a raw path), `http_requests_in_flight`; the
upstream calls as a gRPC client, as grpc-ecosystem's middleware names them:
`grpc_client_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}` and the
`grpc_client_handling_seconds` histogram (`observability/grpc_labels.py`); process
metrics (memory, CPU, open files) with every scrape.

Per request the gateway only bumps plain Python numbers in dicts; the metric
families are built at scrape time (`observability/`, shared with the service):
prometheus-client's own Counter/Histogram children take a lock per value, several
times the cost of a dict bump (docs/performance.md). Everything runs on the event
loop thread (the scrape too), so no lock is needed. Each app owns its
registry, so several apps in one process (tests) do not collide.
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
from observability.histogram import Buckets, Histograms, latency_buckets
from observability.scraped_metrics import ScrapedMetrics

# Route label of requests no route matched: keeps the label set bounded.
UNMATCHED_ROUTE = "unmatched"

_BUCKETS = latency_buckets(0.0005)
# Streams last from milliseconds (an error, a terminal snapshot) to hours.
STREAM_DURATION_BUCKETS = (0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
_STREAM_BUCKETS = Buckets(STREAM_DURATION_BUCKETS)


class GatewayMetrics(ScrapedMetrics):
    def __init__(self) -> None:
        self.in_flight = 0
        self._requests: dict[tuple[str, str, int], int] = {}
        # (method, route): the label order of http_request_duration_seconds
        self._request_seconds = Histograms[tuple[str, str]](_BUCKETS)
        self._upstream_seconds = Histograms[str](_BUCKETS)
        # (grpc_method, grpc_code, grpc_type) → calls, streams included (only
        # observe_stream writes SERVER_STREAM keys: execgate_gateway_streams reads those)
        self._upstream_calls: dict[tuple[str, str, str], int] = {}
        self.streams_open = 0
        self._stream_events: dict[str, int] = {}
        self._stream_seconds = Histograms[str](_STREAM_BUCKETS)
        super().__init__()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        self._request_seconds.observe((method, route), seconds)

    def requests_answered(self) -> int:
        """Every request answered so far (all routes, methods and statuses)."""
        return sum(self._requests.values())

    def observe_upstream(self, grpc_method: str, grpc_code: str, seconds: float) -> None:
        """One upstream unary call: `grpc_method` as on the wire (`/pkg.Service/Method`)."""
        self._upstream_seconds.observe(grpc_method, seconds)
        key = (grpc_method, grpc_code, UNARY)
        self._upstream_calls[key] = self._upstream_calls.get(key, 0) + 1

    def observe_stream(self, grpc_method: str, grpc_code: str, events: int, seconds: float) -> None:
        """A server-streaming call ended (`grpc_code` CANCELLED: the client went away)."""
        call = (grpc_method, grpc_code, SERVER_STREAM)
        self._upstream_calls[call] = self._upstream_calls.get(call, 0) + 1
        self._stream_events[grpc_method] = self._stream_events.get(grpc_method, 0) + events
        self._stream_seconds.observe(grpc_method, seconds)

    def families(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            labels=("method", "route", "code"),
        )
        for (route, method, status), count in self._requests.items():
            requests.add_metric((method, route, str(status)), count)
        yield requests
        yield self._request_seconds.family(
            "http_request_duration_seconds",
            "Time from request to response, by method and route template.",
            ("method", "route"),
        )
        yield GaugeMetricFamily(
            "http_requests_in_flight", "HTTP requests being handled.", self.in_flight
        )
        method_labels = ("grpc_type", "grpc_service", "grpc_method")
        handled = CounterMetricFamily(
            "grpc_client_handled_total",
            "Upstream gRPC calls completed, whatever their status.",
            labels=(*method_labels, "grpc_code"),
        )
        for (grpc_method, code, grpc_type), count in self._upstream_calls.items():
            handled.add_metric((grpc_type, *split_method(grpc_method), go_code(code)), count)
        yield handled
        handling = HistogramMetricFamily(
            "grpc_client_handling_seconds",
            "Duration of upstream gRPC calls, retries included.",
            labels=method_labels,
        )
        for grpc_method, histogram in self._upstream_seconds.items():
            handling.add_metric(
                (UNARY, *split_method(grpc_method)), histogram.cumulative(), histogram.total
            )
        yield handling
        yield from self._stream_families()

    def _stream_families(self) -> Iterator[Metric]:
        streams = CounterMetricFamily(
            "execgate_gateway_streams",
            "Server-streaming calls ended, by gRPC method and the code they ended with.",
            labels=("grpc_method", "grpc_code"),
        )
        for (grpc_method, grpc_code, grpc_type), count in self._upstream_calls.items():
            if grpc_type == SERVER_STREAM:
                streams.add_metric((grpc_method, grpc_code), count)
        yield streams
        events = CounterMetricFamily(
            "execgate_gateway_stream_events",
            "Events sent on server-streaming responses, by gRPC method.",
            labels=("grpc_method",),
        )
        for grpc_method, count in self._stream_events.items():
            events.add_metric((grpc_method,), count)
        yield events
        yield self._stream_seconds.family(
            "execgate_gateway_stream_duration_seconds",
            "How long server-streaming responses lasted, by gRPC method.",
            ("grpc_method",),
        )
        yield GaugeMetricFamily(
            "execgate_gateway_streams_open",
            "Server-streaming responses being sent.",
            self.streams_open,
        )
