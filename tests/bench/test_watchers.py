"""The watchers' summary when no event arrived: figures of 0 and the count missing, so the
run ends with its "missed events" error instead of raising on an empty list."""

from __future__ import annotations

from bench.watchers import Result


def test_watchers_summary_without_deliveries_reports_them_missing() -> None:
    result = Result(watchers=2, events=3, connect_s=0.1, rss_before_kib=0, rss_after_kib=0)
    result.missing = 6
    summary = result.summary()
    assert summary["deliveries"] == 0
    assert summary["missing"] == 6
    assert summary["latency_ms_p99"] == summary["latency_ms_max"] == 0.0
