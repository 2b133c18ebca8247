"""Shared latency histograms: bucketing, cumulative counts, one family per label set."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from observability.histogram import Buckets, Histogram, Histograms

BUCKETS = Buckets((0.001, 0.01, 0.1))


@pytest.mark.parametrize("bounds", [(), (0.1, 0.01), (0.1, 0.1)])
def test_bounds_must_be_strictly_increasing(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        Buckets(bounds)


def test_labels_are_the_bounds_as_prometheus_writes_them_then_inf() -> None:
    assert Buckets([0.00005, 0.5, 10.0]).labels == ("5e-05", "0.5", "10.0", "+Inf")


def test_a_value_on_a_bound_counts_in_that_bound_and_above_the_last_in_inf() -> None:
    histograms = Histograms[str](BUCKETS)
    for seconds in (0.0005, 0.001, 0.002, 0.01, 5.0):
        histograms.observe("get", seconds)
    (histogram,) = dict(histograms.items()).values()
    assert histogram.counts == [2, 2, 0, 1]
    assert histogram.total == pytest.approx(5.0135)


def test_cumulative_counts_everything_at_or_below_each_bound() -> None:
    histograms = Histograms[str](BUCKETS)
    for seconds in (0.0005, 0.05, 0.07, 2.0):
        histograms.observe("get", seconds)
    (histogram,) = dict(histograms.items()).values()
    assert histogram.cumulative() == [
        ("0.001", 1.0),
        ("0.01", 1.0),
        ("0.1", 3.0),
        ("+Inf", 4.0),
    ]


def test_a_new_histogram_is_all_zero() -> None:
    histogram = Histogram(BUCKETS)
    assert histogram.cumulative() == [("0.001", 0), ("0.01", 0), ("0.1", 0), ("+Inf", 0)]
    assert histogram.total == 0


def test_a_histogram_is_created_once_per_label_values() -> None:
    histograms = Histograms[tuple[str, str]](BUCKETS)
    histograms.observe(("a", "GET"), 0.005)
    histograms.observe(("a", "GET"), 0.5)
    histograms.observe(("b", "GET"), 0.005)
    by_labels = dict(histograms.items())
    assert sorted(by_labels) == [("a", "GET"), ("b", "GET")]
    assert by_labels["a", "GET"].counts == [0, 1, 0, 1]
    assert by_labels["b", "GET"].counts == [0, 1, 0, 0]


class _Families(Collector):
    def __init__(self, *families: Metric) -> None:
        self._families = families

    def collect(self) -> tuple[Metric, ...]:
        return self._families


def _scrape(*families: Metric) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(_Families(*families))
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_family_exposes_single_and_multiple_label_values() -> None:
    by_method = Histograms[str](BUCKETS)
    by_method.observe("/p.S/M", 0.05)
    by_route = Histograms[tuple[str, str]](BUCKETS)
    by_route.observe(("/v1/x", "GET"), 0.0001)
    by_route.observe(("/v1/x", "GET"), 0.2)

    samples = _scrape(
        by_method.family("t_rpc_seconds", "RPC time.", ("grpc_method",)),
        by_route.family("t_request_seconds", "Request time.", ("route", "method")),
    )

    method = {("grpc_method", "/p.S/M")}
    assert samples["t_rpc_seconds_bucket", frozenset({*method, ("le", "0.01")})] == 0
    assert samples["t_rpc_seconds_bucket", frozenset({*method, ("le", "0.1")})] == 1
    assert samples["t_rpc_seconds_count", frozenset(method)] == 1
    assert samples["t_rpc_seconds_sum", frozenset(method)] == pytest.approx(0.05)
    route = {("route", "/v1/x"), ("method", "GET")}
    assert samples["t_request_seconds_bucket", frozenset({*route, ("le", "0.001")})] == 1
    assert samples["t_request_seconds_bucket", frozenset({*route, ("le", "+Inf")})] == 2
    assert samples["t_request_seconds_sum", frozenset(route)] == pytest.approx(0.2001)


def test_family_of_nothing_recorded_has_no_samples() -> None:
    family = Histograms[str](BUCKETS).family("t_idle_seconds", "Idle.", ("operation",))
    assert family.samples == []
