"""Load shedding in the gateway (gateway/load_shedding.py, gateway/backend_state.py): the
bound in flight, the failed-auth throttle per client address, failing fast while no
backend is ready and recovering when one is back."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from gateway.config import GatewayConfig
from service.server import ExecutionServer
from tests.support.gateway_harness import running_gateway
from tests.support.probe_servicer import ProbeBackend
from tests.support.probe_servicer import probe_gateway_config as _config
from tests.support.running_service import start_service

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


async def test_requests_beyond_the_in_flight_bound_get_503_at_once(
    probe: ProbeBackend, http: aiohttp.ClientSession
) -> None:
    async with running_gateway(_config(probe, max_in_flight=2, retry_after_s=2)) as gateway:
        url = f"{gateway.base_url}/v1/shelves/sleep"
        held = [asyncio.create_task(http.get(url)) for _ in range(2)]
        for _ in range(100):
            if probe.servicer.calls == 2:
                break
            await asyncio.sleep(0.02)
        assert probe.servicer.calls == 2
        started = time.perf_counter()
        async with http.get(url) as response:
            body = await response.json()
        elapsed = time.perf_counter() - started
        assert response.status == 503
        assert response.headers["Retry-After"] == "2"
        assert body["error"]["code"] == "overloaded"
        assert elapsed < 0.2
        assert probe.servicer.calls == 2  # shed before any upstream call
        async with http.get(f"{gateway.base_url}/healthz") as health:
            assert health.status == 200  # health is never shed
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)


async def test_failed_authentications_from_one_address_are_throttled(
    probe: ProbeBackend, http: aiohttp.ClientSession
) -> None:
    config = _config(probe, auth_failure_burst=3, auth_failure_rate=0.5)
    async with running_gateway(config) as gateway:
        url = f"{gateway.base_url}/v1/shelves/status-UNAUTHENTICATED"
        statuses = []
        for _ in range(5):
            async with http.get(url) as response:
                statuses.append(response.status)
                last = (response.headers.get("Retry-After"), await response.json())
        assert statuses == [401, 401, 401, 429, 429]
        assert probe.servicer.calls == 3  # refused without asking the service
        retry_after, body = last
        assert retry_after == "2"  # one failure earned back every 2 s
        assert body["error"]["code"] == "too_many_failed_authentications"
        async with http.get(f"{gateway.base_url}/v1/shelves/ok") as response:
            assert response.status == 429  # the address, whatever the request


async def test_successful_requests_never_use_up_the_failed_auth_budget(
    probe: ProbeBackend, http: aiohttp.ClientSession
) -> None:
    config = _config(probe, auth_failure_burst=1, auth_failure_rate=0.1)
    async with running_gateway(config) as gateway:
        for _ in range(20):
            async with http.get(f"{gateway.base_url}/v1/shelves/ok") as response:
                assert response.status == 200


async def _get_status(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    async with http.get(url, headers=headers) as response:
        await response.read()
        return response.status


async def test_with_the_backend_down_503_is_fast_and_recovery_follows_its_return(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with start_service(tmp_path) as service:
        demo = service.demo
        config = GatewayConfig(port=0, backend=service.address, shutdown_timeout_s=1.0)
        path = f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions['completed_10']}"
        headers = {"Authorization": f"Bearer {demo.api_key}"}
        async with running_gateway(config) as gateway:
            url = gateway.base_url + path
            assert await _get_status(http, url, headers) == 200
            await service.server.stop(grace_seconds=0)
            # The channel notices; from then on every answer is a fast 503.
            for _ in range(100):
                if await _get_status(http, url, headers) == 503:
                    break
                await asyncio.sleep(0.05)
            times = []
            for _ in range(20):
                started = time.perf_counter()
                assert await _get_status(http, url, headers) == 503
                times.append(time.perf_counter() - started)
            assert statistics.median(times) < 0.02, times  # was ~0.76 s (5 attempts)
            # The service comes back on the same port.
            again = ExecutionServer(service.store, store_check_seconds=0)
            await again.start(service.address)
            try:
                back = time.perf_counter()
                while await _get_status(http, url, headers) != 200:
                    assert time.perf_counter() - back < 2.0, "no recovery within 2 s"
                    await asyncio.sleep(0.01)
                recovered_s = time.perf_counter() - back
            finally:
                await again.stop(grace_seconds=0)
        fast_ms = statistics.median(times) * 1000
        print(f"fast 503 median {fast_ms:.2f} ms, recovery {recovered_s:.2f} s")
        assert recovered_s < 1.5
