"""What one load run measured, whichever tool generated the load."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` 0 to 1): the smallest value with at least that
    share of all values at or below it, e.g. the 198th of 200 for p99; 0.0 when empty."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = math.ceil(fraction * len(ordered) - 1e-9)  # 1-based; 1e-9: 0.07 * 100 is 7.000…01
    return float(ordered[min(max(rank, 1), len(ordered)) - 1])


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One bounded load run against one target.

    `expected` counts answers with the case's expected status (200, or 404 for
    the miss); `unexpected` counts everything else (other statuses, socket
    errors, timeouts). Latencies are of all completed requests, in microseconds.
    `client_cpu_s` is the load generator's own CPU time during the run.
    """

    requests: int
    duration_s: float
    expected: int
    unexpected: int
    p50_us: float
    p99_us: float
    client_cpu_s: float

    @property
    def throughput(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0
