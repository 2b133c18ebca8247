"""What one load run measured, whichever tool generated the load."""

from __future__ import annotations

from dataclasses import dataclass


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
