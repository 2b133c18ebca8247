"""Prometheus metrics of the gateway, served at `/metrics` by prometheus-client.

Per request the gateway only bumps plain Python numbers in dicts; the metric
families are built at scrape time (`observability/`, shared with the service).
Measured on this machine: prometheus-client's own Counter/Histogram children
cost ~1.4 µs per `inc` and ~5 µs per `observe` (a lock per value), ~15 µs per
request in all; the plain counters below 0.7 µs. Everything runs on the event
loop thread (the scrape too), so no lock is needed. Each app owns its
registry, so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from observability.histogram import Buckets, Histograms
from observability.scraped_metrics import ScrapedMetrics

# Route label of requests no route matched: keeps the label set bounded.
UNMATCHED_ROUTE = "unmatched"

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_BUCKETS = Buckets(LATENCY_BUCKETS)
# Streams last from milliseconds (an error, a terminal snapshot) to hours.
STREAM_DURATION_BUCKETS = (0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
_STREAM_BUCKETS = Buckets(STREAM_DURATION_BUCKETS)


class GatewayMetrics(ScrapedMetrics):
    def __init__(self) -> None:
        self.in_flight = 0
        self._requests: dict[tuple[str, str, int], int] = {}
        self._request_seconds = Histograms[tuple[str, str]](_BUCKETS)
        self._upstream_seconds = Histograms[str](_BUCKETS)
        self._upstream_errors: dict[tuple[str, str], int] = {}
        self.streams_open = 0
        self._streams: dict[tuple[str, str], int] = {}
        self._stream_events: dict[str, int] = {}
        self._stream_seconds = Histograms[str](_STREAM_BUCKETS)
        super().__init__()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        self._request_seconds.observe((route, method), seconds)

    def requests_answered(self) -> int:
        """Every request answered so far (all routes, methods and statuses)."""
        return sum(self._requests.values())

    def observe_upstream(self, grpc_method: str, grpc_code: str, seconds: float) -> None:
        self._upstream_seconds.observe(grpc_method, seconds)
        if grpc_code != "OK":
            key = (grpc_method, grpc_code)
            self._upstream_errors[key] = self._upstream_errors.get(key, 0) + 1

    def observe_stream(self, grpc_method: str, grpc_code: str, events: int, seconds: float) -> None:
        """A server-streaming call ended (`grpc_code` CANCELLED: the client went away)."""
        key = (grpc_method, grpc_code)
        self._streams[key] = self._streams.get(key, 0) + 1
        self._stream_events[grpc_method] = self._stream_events.get(grpc_method, 0) + events
        self._stream_seconds.observe(grpc_method, seconds)

    def families(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "execgate_gateway_requests",
            "HTTP requests answered, by route template, method and status.",
            labels=("route", "method", "status"),
        )
        for (route, method, status), count in self._requests.items():
            requests.add_metric((route, method, str(status)), count)
        yield requests
        yield self._request_seconds.family(
            "execgate_gateway_request_duration_seconds",
            "Time from request to response, by route template and method.",
            ("route", "method"),
        )
        yield self._upstream_seconds.family(
            "execgate_gateway_upstream_duration_seconds",
            "Duration of upstream gRPC calls, by gRPC method.",
            ("grpc_method",),
        )
        upstream_errors = CounterMetricFamily(
            "execgate_gateway_upstream_errors",
            "Upstream gRPC calls that ended with a status other than OK, by method and code.",
            labels=("grpc_method", "grpc_code"),
        )
        for (grpc_method, grpc_code), count in self._upstream_errors.items():
            upstream_errors.add_metric((grpc_method, grpc_code), count)
        yield upstream_errors
        yield GaugeMetricFamily(
            "execgate_gateway_requests_in_flight", "HTTP requests being handled.", self.in_flight
        )
        yield from self._stream_families()

    def _stream_families(self) -> Iterator[Metric]:
        streams = CounterMetricFamily(
            "execgate_gateway_streams",
            "Server-streaming calls ended, by gRPC method and the code they ended with.",
            labels=("grpc_method", "grpc_code"),
        )
        for (grpc_method, grpc_code), count in self._streams.items():
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
