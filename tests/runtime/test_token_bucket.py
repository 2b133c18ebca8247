"""Token buckets: burst, refill rate, the wait reported, the bounded table."""

from __future__ import annotations

import pytest

from runtime.token_bucket import Limit, TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    buckets: TokenBuckets[str] = TokenBuckets(Limit(3, 2.0), clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token per half second
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("b") == 0.0  # buckets are per key


def test_a_key_may_carry_its_own_limit() -> None:
    buckets: TokenBuckets[str] = TokenBuckets(Limit(100, 100.0), clock=Clock())
    own = Limit(1, 0.25)
    assert buckets.take("k", own) == 0.0
    assert buckets.take("k", own) == pytest.approx(4.0)


def test_waiting_takes_nothing_and_adds_no_key() -> None:
    clock = Clock()
    buckets: TokenBuckets[str] = TokenBuckets(Limit(1, 1.0), clock=clock)
    assert buckets.waiting("never") == 0.0
    assert len(buckets) == 0
    buckets.take("x")
    assert buckets.waiting("x") == pytest.approx(1.0)
    clock.now += 1.0
    assert buckets.waiting("x") == 0.0
    assert buckets.waiting("x") == 0.0  # looking twice took nothing


def test_the_table_keeps_at_most_max_keys_dropping_the_least_recent() -> None:
    buckets: TokenBuckets[int] = TokenBuckets(Limit(1, 1.0), max_keys=3, clock=Clock())
    for key in range(5):
        buckets.take(key)
    assert len(buckets) == 3
    assert buckets.waiting(0) == 0.0  # dropped: starts full again
    assert buckets.waiting(4) > 0


def test_the_draft_policy_item() -> None:
    assert Limit(100, 100 / 60).policy() == '"default";q=100;w=60'
    with pytest.raises(ValueError, match="burst >= 1"):
        Limit(0, 1.0)
