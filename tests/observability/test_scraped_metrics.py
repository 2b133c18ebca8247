"""Metrics built at scrape time: each scrape reads the current numbers; registries are separate."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from observability.scraped_metrics import ScrapedMetrics


class _Calls(ScrapedMetrics):
    def __init__(self) -> None:
        self.calls = 0
        super().__init__()

    def families(self) -> Iterator[Metric]:
        yield CounterMetricFamily("t_calls", "Calls.", value=self.calls)


def _calls_total(metrics: _Calls) -> float:
    families = text_string_to_metric_families(metrics.exposition().decode())
    (sample,) = [s for family in families for s in family.samples if s.name == "t_calls_total"]
    return sample.value


def test_process_metrics_come_with_every_scrape() -> None:
    names = {
        family.name for family in text_string_to_metric_families(_Calls().exposition().decode())
    }
    assert {"process_resident_memory_bytes", "process_cpu_seconds", "process_open_fds"} <= names


def test_each_scrape_reads_the_numbers_recorded_so_far() -> None:
    metrics = _Calls()
    assert _calls_total(metrics) == 0
    metrics.calls += 3
    assert _calls_total(metrics) == 3


def test_instances_do_not_share_a_registry() -> None:
    first, second = _Calls(), _Calls()  # the same metric names: one registry would refuse them
    first.calls = 1
    assert (_calls_total(first), _calls_total(second)) == (1, 0)


def test_content_type_is_the_text_exposition_format() -> None:
    assert _Calls.content_type.startswith("text/plain; version=")
