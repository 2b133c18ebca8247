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
    requests = "http_requests_total"
    assert (
        samples[(requests, frozenset({("route", route), ("method", "GET"), ("code", "200")}))] == 2
    )
    assert (
        samples[(requests, frozenset({("route", route), ("method", "GET"), ("code", "404")}))] == 1
    )
    count = "http_request_duration_seconds_count"
    assert samples[(count, frozenset({("route", route), ("method", "GET")}))] == 3
    call = {("grpc_type", "unary"), ("grpc_service", "pkg.Svc"), ("grpc_method", "Get")}
    assert samples[("grpc_client_handling_seconds_count", frozenset(call))] == 2
    handled = "grpc_client_handled_total"
    assert samples[(handled, frozenset({*call, ("grpc_code", "NotFound")}))] == 1
    assert samples[(handled, frozenset({*call, ("grpc_code", "OK")}))] == 1
    assert samples[("http_requests_in_flight", frozenset())] == 1
    assert samples[("process_open_fds", frozenset())] > 0


def test_two_registries_do_not_collide() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    first.observe_request("/a", "GET", 200, 0.1)
    assert "/a" not in second.exposition().decode()


def test_streams_family_counts_server_streams_only() -> None:
    metrics = GatewayMetrics()
    metrics.observe_upstream("/pkg.Svc/Get", "OK", 0.001)
    metrics.observe_stream("/pkg.Svc/Watch", "OK", 3, 1.0)
    metrics.observe_stream("/pkg.Svc/Watch", "OK", 1, 2.0)
    metrics.observe_stream("/pkg.Svc/Watch", "CANCELLED", 0, 0.5)
    samples = _samples(metrics)
    streams = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "execgate_gateway_streams_total"
    }
    watch = ("grpc_method", "/pkg.Svc/Watch")
    assert streams == {
        frozenset({watch, ("grpc_code", "OK")}): 2,
        frozenset({watch, ("grpc_code", "CANCELLED")}): 1,
    }
    stream_call = {
        ("grpc_type", "server_stream"),
        ("grpc_service", "pkg.Svc"),
        ("grpc_method", "Watch"),
    }
    assert (
        samples[("grpc_client_handled_total", frozenset({*stream_call, ("grpc_code", "OK")}))] == 2
    )
