"""The benchmark's one percentile, nearest rank (abuse, watchers and grpc_load use it)."""

from __future__ import annotations

import pytest

from bench.load_result import percentile


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.5, 0.0),
        ([], 0.99, 0.0),
        ([7.0], 0.99, 7.0),
        ([3.0, 1.0, 2.0], 0.5, 2.0),  # unsorted input
        ([float(v) for v in range(1, 201)], 0.5, 100.0),  # nearest rank: the 100th of 200
        ([float(v) for v in range(1, 201)], 0.99, 198.0),
        ([float(v) for v in range(1, 151)], 0.99, 149.0),  # ceil(148.5)
        ([float(v) for v in range(1, 101)], 0.07, 7.0),  # 0.07 * 100 is not exactly 7
        ([float(v) for v in range(1, 11)], 0.0, 1.0),
        ([float(v) for v in range(1, 11)], 1.0, 10.0),
        ([5, 1, 3], 1.0, 5.0),  # integers (grpc_load's nanoseconds)
    ],
)
def test_percentile_is_nearest_rank(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == expected
