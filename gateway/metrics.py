"""Prometheus metrics of the gateway, served at `/metrics`.

Each app owns its own registry (so several apps in one process, as in tests,
do not collide). Label children are cached in plain dicts: `labels()` costs a
few microseconds per call, a dict hit a few dozen nanoseconds.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest

# Route label of requests no route matched: keeps the label set bounded.
UNMATCHED_ROUTE = "unmatched"

_LATENCY_BUCKETS = (
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


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._requests = Counter(
            "execgate_gateway_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self._request_seconds = Histogram(
            "execgate_gateway_request_duration_seconds",
            "Time from request to response, by route template and method.",
            ("route", "method"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._upstream_seconds = Histogram(
            "execgate_gateway_upstream_duration_seconds",
            "Duration of upstream gRPC calls, by gRPC method.",
            ("grpc_method",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._upstream_errors = Counter(
            "execgate_gateway_upstream_errors",
            "Upstream gRPC calls that ended with a status other than OK, by method and code.",
            ("grpc_method", "grpc_code"),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "execgate_gateway_requests_in_flight",
            "HTTP requests being handled.",
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._request_seconds_children: dict[tuple[str, str], Histogram] = {}
        self._upstream_children: dict[str, Histogram] = {}
        self._upstream_error_children: dict[tuple[str, str], Counter] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self._requests.labels(route, method, status)
        counter.inc()
        timing_key = (route, method)
        histogram = self._request_seconds_children.get(timing_key)
        if histogram is None:
            histogram = self._request_seconds.labels(route, method)
            self._request_seconds_children[timing_key] = histogram
        histogram.observe(seconds)

    def observe_upstream(self, grpc_method: str, grpc_code: str, seconds: float) -> None:
        histogram = self._upstream_children.get(grpc_method)
        if histogram is None:
            histogram = self._upstream_seconds.labels(grpc_method)
            self._upstream_children[grpc_method] = histogram
        histogram.observe(seconds)
        if grpc_code != "OK":
            key = (grpc_method, grpc_code)
            counter = self._upstream_error_children.get(key)
            if counter is None:
                counter = self._upstream_errors.labels(grpc_method, grpc_code)
                self._upstream_error_children[key] = counter
            counter.inc()

    def exposition(self) -> bytes:
        return _generate_latest(self.registry)
