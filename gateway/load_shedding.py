"""Which API requests the gateway takes on: a bound in flight, and failed-auth throttling.

Both are decided before any upstream call, in constant time, so that refusing costs
far less than serving (the point of shedding):
- over `max_in_flight` requests being answered at once, 503 `overloaded` with
  `Retry-After` at once, instead of queueing into multi-second latencies;
- a client address whose requests were answered 401 more often than its failed-auth
  bucket allows gets 429 without a call to the service (each failed authentication is
  a store lookup there), so guessing keys is slowed to the bucket's rate.
Both are per gateway process (each worker and replica its own): the in-flight bound
is about this process's memory and latency; the failed-auth bucket multiplies by the
number of processes a client can reach (docs/deployment.md).
"""

from __future__ import annotations

import math
from typing import Final

from gateway.errors.overload import ClientThrottledError, OverloadedError
from runtime.token_bucket import Limit, TokenBuckets

UNAUTHORIZED: Final = 401


class Admission:
    def __init__(self, max_in_flight: int, auth_failures: Limit) -> None:
        self.max_in_flight = max_in_flight
        self.auth_failures: TokenBuckets[str] = TokenBuckets(auth_failures)

    def admit(self, client: str, in_flight: int) -> None:
        """Raise the refusal of a request from `client` with `in_flight` (itself included)."""
        if in_flight > self.max_in_flight:
            raise OverloadedError(self.max_in_flight)
        wait_s = self.auth_failures.waiting(client)  # no table entry until a failure
        if wait_s:
            raise ClientThrottledError(max(1, math.ceil(wait_s)))

    def answered(self, client: str, status: int) -> None:
        if status == UNAUTHORIZED:
            self.auth_failures.take(client)
