"""The metrics registry: labels as documented, counters and histograms move."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import GatewayMetrics


def _samples(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_and_upstream_calls_are_counted_with_their_labels() -> None:
    metrics = GatewayMetrics()
    route = "/v1/shelves/{shelf_id}"
    metrics.observe_request(route, "GET", 200, 0.002)
    metrics.observe_request(route, "GET", 200, 0.004)
    metrics.observe_request(route, "GET", 404, 0.001)
    metrics.observe_upstream("/pkg.Svc/Get", "OK", 0.001)
    metrics.observe_upstream("/pkg.Svc/Get", "NOT_FOUND", 0.001)
    metrics.in_flight += 1
    samples = _samples(metrics)
    requests = "execgate_gateway_requests_total"
    assert (
        samples[(requests, frozenset({("route", route), ("method", "GET"), ("status", "200")}))]
        == 2
    )
    assert (
        samples[(requests, frozenset({("route", route), ("method", "GET"), ("status", "404")}))]
        == 1
    )
    count = "execgate_gateway_request_duration_seconds_count"
    assert samples[(count, frozenset({("route", route), ("method", "GET")}))] == 3
    upstream = "execgate_gateway_upstream_duration_seconds_count"
    assert samples[(upstream, frozenset({("grpc_method", "/pkg.Svc/Get")}))] == 2
    errors = "execgate_gateway_upstream_errors_total"
    key = frozenset({("grpc_method", "/pkg.Svc/Get"), ("grpc_code", "NOT_FOUND")})
    assert samples[(errors, key)] == 1
    assert not any(name == errors and ("grpc_code", "OK") in labels for name, labels in samples)
    assert samples[("execgate_gateway_requests_in_flight", frozenset())] == 1


def test_two_registries_do_not_collide() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    first.observe_request("/a", "GET", 200, 0.1)
    assert "/a" not in second.exposition().decode()
