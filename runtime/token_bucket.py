"""Token buckets by key (an API key ID, a client address): a burst, then a steady rate.

A bucket holds up to `burst` tokens and earns `rate` per second; taking one when fewer
than one is left is refused with the seconds until one is earned. The table keeps at
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


@dataclass(frozen=True, slots=True)
class Taken:
    """The outcome of one `take`: `wait_s` is 0 when allowed, else seconds until allowed."""

    wait_s: float
    remaining: int  # whole tokens left after this take
    full_in_s: float  # seconds until the bucket is full again

    @property
    def allowed(self) -> bool:
        return self.wait_s == 0.0


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

    def take(self, key: K, limit: Limit | None = None, *, spend: bool = True) -> Taken:
        """Take a token of `key`'s bucket (or, with `spend=False`, only say if one is there)."""
        limit = limit or self.limit
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(limit.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(limit.burst, bucket.tokens + (now - bucket.stamp) * limit.rate)
            bucket.stamp = now
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / limit.rate
            return Taken(wait, 0, (limit.burst - bucket.tokens) / limit.rate)
        if spend:
            bucket.tokens -= 1.0
        return Taken(0.0, int(bucket.tokens), (limit.burst - bucket.tokens) / limit.rate)
