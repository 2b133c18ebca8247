"""Metrics kept as plain numbers per call and turned into Prometheus families per scrape.

Exists because the service and the gateway both count this way and must not
import each other. prometheus-client's own Counter/Histogram children take a
lock per value; a dict bump costs a fraction of that (docs/performance.md).
Everything runs on the event loop thread, the
scrape too, so no lock is needed. Each instance owns its registry, so several
apps in one process (tests) do not collide.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector


class ScrapedMetrics(ABC):
    """A registry whose one collector is `families`, called at each scrape."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_FamiliesCollector(self.families))
        # process_resident_memory_bytes, process_cpu_seconds_total, process_open_fds, …
        # (read from /proc at scrape time; nothing on platforms without it).
        ProcessCollector(registry=self.registry)

    def exposition(self) -> bytes:
        """The text exposition format, for a `/metrics` response body."""
        return generate_latest(self.registry)

    @abstractmethod
    def families(self) -> Iterable[Metric]:
        """Every metric family, built from the numbers recorded so far."""


class _FamiliesCollector(Collector):
    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families()
