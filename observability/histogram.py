"""Latency histograms that cost a few plain-number bumps per observation.

Exists because the service and the gateway both time every call this way and
must not import each other. prometheus-client's own Histogram takes a lock per
value (docs/performance.md); everything here runs on the event
loop thread, the scrape too, so a list of counts is enough. Each side keeps its
own bucket bounds; the families are built only at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import ItemsView, Sequence
from itertools import pairwise
from typing import Final, Generic, TypeVar

from prometheus_client.core import HistogramMetricFamily

# One label value (`"GetExecution"`) or several (`("route", "GET")`): a single
# label stays a plain string so that recording it allocates no tuple.
LabelValues = TypeVar("LabelValues", bound=str | tuple[str, ...])


# Latency bucket bounds in seconds, 1-2.5-5 per decade from 50 µs to 10 s; each side
# starts where its fastest answers lie (`latency_buckets`).
_LATENCY_BOUNDS_S: Final = (
    0.00005,
    0.0001,
    0.00025,
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


def latency_buckets(smallest_s: float) -> Buckets:
    """The latency buckets from `smallest_s` (one of the bounds) up to 10 s."""
    return Buckets([bound for bound in _LATENCY_BOUNDS_S if bound >= smallest_s])


class Buckets:
    """The upper bounds of a histogram's buckets and their exposition labels."""

    __slots__ = ("bounds", "labels")

    def __init__(self, bounds: Sequence[float]) -> None:
        if not bounds or any(low >= high for low, high in pairwise(bounds)):
            raise ValueError(f"bucket bounds must be strictly increasing, got {bounds!r}")
        self.bounds = tuple(bounds)
        # `le` labels as prometheus-client writes them; the last bucket is +Inf.
        self.labels = (*(repr(bound) for bound in self.bounds), "+Inf")


class Histogram:
    """Counts per bucket and the sum of what was observed; recorded by `Histograms.observe`."""

    __slots__ = ("_labels", "counts", "total")

    def __init__(self, buckets: Buckets) -> None:
        self._labels = buckets.labels
        self.counts = [0] * len(buckets.labels)
        self.total = 0.0

    def cumulative(self) -> list[tuple[str, float]]:
        """The buckets as Prometheus exposes them: (`le` label, count at or below it)."""
        running = 0
        buckets = []
        for label, count in zip(self._labels, self.counts, strict=True):
            running += count
            buckets.append((label, float(running)))
        return buckets


class Histograms(Generic[LabelValues]):
    """One histogram per label values, created on first use."""

    __slots__ = ("_bounds", "_buckets", "_by_labels")

    def __init__(self, buckets: Buckets) -> None:
        self._buckets = buckets
        self._bounds = buckets.bounds
        self._by_labels: dict[LabelValues, Histogram] = {}

    def observe(self, labels: LabelValues, seconds: float) -> None:
        # The bump is inline rather than a `Histogram` method: a second call per
        # observation costs more, as did a dict subclass with `__missing__`.
        histogram = self._by_labels.get(labels)
        if histogram is None:
            histogram = self._by_labels[labels] = Histogram(self._buckets)
        # bisect_left: a value equal to a bound belongs to that bound's bucket (`le`).
        histogram.counts[bisect_left(self._bounds, seconds)] += 1
        histogram.total += seconds

    def items(self) -> ItemsView[LabelValues, Histogram]:
        return self._by_labels.items()

    def family(
        self, name: str, documentation: str, label_names: Sequence[str]
    ) -> HistogramMetricFamily:
        """The metric family of every histogram recorded so far, built at scrape time."""
        family = HistogramMetricFamily(name, documentation, labels=label_names)
        for labels, histogram in self._by_labels.items():
            values = (labels,) if isinstance(labels, str) else labels
            family.add_metric(values, histogram.cumulative(), histogram.total)
        return family
