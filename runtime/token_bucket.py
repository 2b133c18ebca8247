"""Token buckets by key (an API key ID, a client address): a burst, then a steady rate.

A bucket holds up to `burst` tokens and earns `rate` per second; taking one when fewer
than one is left is refused with the seconds until one is earned (a float, not an
object: this runs on every request). The table keeps at
most `max_keys` buckets, dropping the least recently used (a dropped bucket starts
full again, which only ever errs towards letting a client through).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

K = TypeVar("K")

DEFAULT_MAX_KEYS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Limit:
    """`burst` requests at once, then `rate` per second."""

    burst: int
    rate: float

    def __post_init__(self) -> None:
        if self.burst < 1 or not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"a rate limit needs burst >= 1 and rate > 0, got {self}")

    def policy(self) -> str:
        """The `RateLimit-Policy` item (draft-ietf-httpapi-ratelimit-headers-08):
        quota `q` requests per window `w` seconds, the window being a full refill."""
        return f'"default";q={self.burst};w={max(1, math.ceil(self.burst / self.rate))}'


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets(Generic[K]):
    """One bucket per key, all with the same default `Limit` unless `take` names another."""

    def __init__(
        self,
        limit: Limit,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[K, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: K, limit: Limit | None = None) -> float:
        """Take a token of `key`'s bucket: 0.0 when allowed, else the seconds until a
        token is earned (and nothing is taken)."""
        limit = limit or self.limit
        bucket = self._refilled(key, limit)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(limit.burst), self._clock())
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        if bucket.tokens < 1.0:
            return (1.0 - bucket.tokens) / limit.rate
        bucket.tokens -= 1.0
        return 0.0

    def waiting(self, key: K) -> float:
        """Seconds until `key` may take a token (0.0: now); takes nothing, and a key
        without a bucket (never taken from) gets none."""
        if key not in self._buckets:
            return 0.0
        bucket = self._refilled(key, self.limit)
        assert bucket is not None
        return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / self.limit.rate

    def _refilled(self, key: K, limit: Limit) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._buckets.move_to_end(key)
            now = self._clock()
            tokens = bucket.tokens + (now - bucket.stamp) * limit.rate
            bucket.tokens = tokens if tokens < limit.burst else float(limit.burst)
            bucket.stamp = now
        return bucket
