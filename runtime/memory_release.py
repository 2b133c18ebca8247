"""After a burst of traffic, give the heap's free memory back to the OS once idle.

Used by the gateway (and single-process mode) and by the service, each over its own
request counters.

Large responses (a 1,000-document execution is ~340 KB, several copies per
request) are served from the heap (`runtime.allocator`: much cheaper than an
`mmap` per buffer), and glibc keeps what they freed for reuse: after a burst at
64 connections the gateway holds 40 to 60 MiB of free heap, and how much depends
on the burst's peak, so RSS keeps drifting up to that high-water mark over tens
of thousands of requests (bench/experiments/NOTES.md, "Gateway memory growth").
Once no request has been answered for a whole interval and none is in flight,
`malloc_trim(0)` returns those pages, in a worker thread so that the loop never
waits on it; it runs once per idle spell, not again until requests were served.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Final, Protocol

from runtime.allocator import release_free_memory

IDLE_INTERVAL_S: Final = 2.0


class Activity(Protocol):
    """What idleness is read from: a process's request (or RPC) counters."""

    @property
    def in_flight(self) -> int: ...

    def requests_answered(self) -> int: ...


async def release_memory_when_idle(
    metrics: Activity,
    interval_s: float = IDLE_INTERVAL_S,
    release: Callable[[], bool] = release_free_memory,
) -> None:
    """Run until cancelled: after each request-free interval, release once."""
    seen = metrics.requests_answered()
    released_at = seen  # nothing to give back before the first request
    while True:
        await asyncio.sleep(interval_s)
        served = metrics.requests_answered()
        if served == seen and served != released_at and metrics.in_flight == 0:
            await asyncio.to_thread(release)
            released_at = served
        seen = served


@contextlib.asynccontextmanager
async def releasing_memory_when_idle(
    metrics: Activity,
    interval_s: float = IDLE_INTERVAL_S,
    release: Callable[[], bool] = release_free_memory,
) -> AsyncIterator[None]:
    """`release_memory_when_idle` running in a task for the duration of the block."""
    task = asyncio.create_task(release_memory_when_idle(metrics, interval_s, release))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
