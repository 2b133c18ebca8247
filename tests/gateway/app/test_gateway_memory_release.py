"""The gateway gives free heap back once idle: once per idle spell, never while busy."""

from __future__ import annotations

import asyncio

import pytest

from gateway.metrics import GatewayMetrics
from runtime.memory_release import releasing_memory_when_idle

INTERVAL_S = 0.05


class Releases:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> bool:
        self.count += 1
        return True


async def _serve(metrics: GatewayMetrics, seconds: float) -> None:
    """Answer a request every tenth of an interval for `seconds`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        metrics.observe_request("/v1/x", "GET", 200, 0.001)
        await asyncio.sleep(INTERVAL_S / 10)


@pytest.mark.asyncio
async def test_releases_once_per_idle_spell_and_never_while_busy() -> None:
    metrics = GatewayMetrics()
    releases = Releases()
    async with releasing_memory_when_idle(metrics, INTERVAL_S, releases):
        await asyncio.sleep(INTERVAL_S * 4)
        assert releases.count == 0, "nothing served yet: nothing to give back"
        await _serve(metrics, INTERVAL_S * 6)
        assert releases.count == 0, "released while requests were being answered"
        await asyncio.sleep(INTERVAL_S * 6)
        assert releases.count == 1, "one release after the burst"
        await asyncio.sleep(INTERVAL_S * 6)
        assert releases.count == 1, "idle on: no second release"
        await _serve(metrics, INTERVAL_S * 3)
        await asyncio.sleep(INTERVAL_S * 6)
        assert releases.count == 2, "a new burst, a new release"


@pytest.mark.asyncio
async def test_no_release_while_a_request_is_in_flight() -> None:
    metrics = GatewayMetrics()
    releases = Releases()
    async with releasing_memory_when_idle(metrics, INTERVAL_S, releases):
        await asyncio.sleep(0)  # the task starts before the first request
        metrics.observe_request("/v1/x", "GET", 200, 0.001)
        metrics.in_flight = 1  # a slow call, answered after several intervals
        await asyncio.sleep(INTERVAL_S * 6)
        assert releases.count == 0
        metrics.in_flight = 0
        await asyncio.sleep(INTERVAL_S * 4)
        assert releases.count == 1
