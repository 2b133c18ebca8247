"""The service sheds calls beyond its bound in flight (OVERLOADED) and rate-limits each
API key (RATE_LIMITED with `retry-after` and the IETF draft's `ratelimit` metadata);
through the gateway these are 503 and 429 with the matching headers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import grpc
import pytest
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2

from gateway.config import GatewayConfig
from runtime.token_bucket import Limit
from service import admin
from service.auth import Authenticator
from service.errors import RateLimitedError
from service.metrics import ServiceMetrics
from tests.service.test_cli import service_cli
from tests.support.gateway_harness import running_gateway
from tests.support.grpc_calls import failure
from tests.support.running_service import RunningService, auth, start_service, stubs
from tests.support.slow_guarded import slow_guarded_server

pytestmark = pytest.mark.asyncio


async def test_calls_beyond_the_bound_in_flight_are_refused_overloaded_at_once() -> None:
    metrics = ServiceMetrics()
    async with slow_guarded_server(metrics, max_in_flight=2) as sleep:
        held = [sleep(b"", timeout=10) for _ in range(2)]
        for _ in range(100):
            if metrics.in_flight == 2:
                break
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        with pytest.raises(grpc.aio.AioRpcError) as shed:
            await sleep(b"", timeout=10)
        assert time.perf_counter() - started < 0.5
        assert shed.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert failure(shed.value).reason == "OVERLOADED"
        assert ("retry-after", "1") in tuple(shed.value.trailing_metadata() or ())
        for call in held:
            call.cancel()


async def test_an_api_key_over_its_rate_is_refused_with_retry_after_and_ratelimit(
    tmp_path: Path,
) -> None:
    async with start_service(tmp_path, store_check_seconds=0, rate_limit=Limit(3, 1.0)) as service:
        demo = service.demo
        request = service_pb2.GetExecutionRequest(
            retriever_id=demo.retriever.id, execution_id=demo.executions["completed_10"]
        )
        async with grpc.aio.insecure_channel(service.address) as channel:
            reader = stubs(channel).reader
            for _ in range(3):
                await reader.GetExecution(request, metadata=auth(demo.api_key))
            with pytest.raises(grpc.aio.AioRpcError) as limited:
                await reader.GetExecution(request, metadata=auth(demo.api_key))
        error = limited.value
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert failure(error).reason == "RATE_LIMITED"
        trailers = dict(error.trailing_metadata() or ())
        assert trailers["retry-after"] == "1"
        assert trailers["ratelimit"] == '"default";r=0;t=1'
        assert trailers["ratelimit-policy"] == '"default";q=3;w=3'


async def test_through_the_gateway_a_rate_limited_key_gets_429_with_the_draft_headers(
    tmp_path: Path,
) -> None:
    async with start_service(tmp_path, store_check_seconds=0, rate_limit=Limit(2, 0.5)) as service:
        demo = service.demo
        path = f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions['failed']}"
        config = GatewayConfig(port=0, backend=service.address, shutdown_timeout_s=1.0)
        async with (
            running_gateway(config) as gateway,
            aiohttp.ClientSession() as http,
        ):
            statuses = []
            for _ in range(3):
                async with http.get(
                    gateway.base_url + path, headers={"Authorization": f"Bearer {demo.api_key}"}
                ) as response:
                    statuses.append(response.status)
                    body = await response.json()
        assert statuses == [200, 200, 429]
        assert body["error"]["code"] == "rate_limited"
        assert response.headers["Retry-After"] == "2"
        assert response.headers["RateLimit"] == '"default";r=0;t=2'
        assert response.headers["RateLimit-Policy"] == '"default";q=2;w=4'


async def test_the_service_counts_rpcs_answered_for_its_idle_memory_release(
    running_service: RunningService,
) -> None:
    metrics = running_service.server.metrics
    demo = running_service.demo
    before = metrics.requests_answered()
    async with grpc.aio.insecure_channel(running_service.address) as channel:
        await stubs(channel).reader.GetExecution(
            service_pb2.GetExecutionRequest(
                retriever_id=demo.retriever.id, execution_id=demo.executions["failed"]
            ),
            metadata=auth(demo.api_key),
        )
    assert metrics.requests_answered() == before + 1


async def test_a_key_created_with_its_own_rate_is_limited_by_it(
    running_service: RunningService,
) -> None:
    store = running_service.store
    namespace = running_service.demo.namespace.id
    own = await admin.create_api_key(store, [namespace], ["read"], Limit(2, 1.0))
    plain = await admin.create_api_key(store, [namespace], ["read"])
    authenticator = Authenticator(store, rate_limit=Limit(5, 1.0))
    for _ in range(2):
        await authenticator.caller(f"Bearer {own.secret}", None, "read")
    with pytest.raises(RateLimitedError) as limited:
        await authenticator.caller(f"Bearer {own.secret}", None, "read")
    assert dict(limited.value.trailers)["ratelimit-policy"] == '"default";q=2;w=2'
    for _ in range(5):  # the default limit for a key without its own
        await authenticator.caller(f"Bearer {plain.secret}", None, "read")
    with pytest.raises(RateLimitedError):
        await authenticator.caller(f"Bearer {plain.secret}", None, "read")


async def test_a_key_with_its_own_rate_is_limited_when_the_default_is_off(
    running_service: RunningService,
) -> None:
    store = running_service.store
    namespace = running_service.demo.namespace.id
    own = await admin.create_api_key(store, [namespace], ["read"], Limit(1, 0.5))
    authenticator = Authenticator(store, rate_limit=None)
    await authenticator.caller(f"Bearer {own.secret}", None, "read")
    with pytest.raises(RateLimitedError):
        await authenticator.caller(f"Bearer {own.secret}", None, "read")
    for _ in range(50):  # the demo key has no limit of its own: unlimited
        await authenticator.caller(f"Bearer {running_service.demo.api_key}", None, "read")


async def test_admin_create_key_takes_a_rate_and_burst(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'admin.db'}"
    assert service_cli("admin", "--store", store_url, "create-namespace", "acme").returncode == 0
    created = service_cli(
        "admin",
        "--store",
        store_url,
        "create-key",
        "--namespace",
        "acme",
        "--permission",
        "read",
        "--rate-per-second",
        "2.5",
        "--burst",
        "10",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["rate_limit"] == {"burst": 10, "per_second": 2.5}
    refused = service_cli(
        "admin",
        "--store",
        store_url,
        "create-key",
        "--namespace",
        "acme",
        "--permission",
        "read",
        "--burst",
        "10",
    )
    assert refused.returncode != 0
    assert "--burst needs --rate-per-second" in refused.stderr


async def test_through_the_gateway_an_overloaded_service_is_503_once_not_429_nor_retried(
    tmp_path: Path,
) -> None:
    # A bound of 0: every call is beyond it.
    async with start_service(tmp_path, store_check_seconds=0, max_in_flight=0) as running:
        shedding = running.server
        demo = running.demo
        path = f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions['failed']}"
        config = GatewayConfig(port=0, backend=running.address, shutdown_timeout_s=1.0)
        headers = {"Authorization": f"Bearer {demo.api_key}"}
        async with (
            running_gateway(config) as gateway,
            aiohttp.ClientSession() as http,
            http.get(gateway.base_url + path, headers=headers) as response,
        ):
            body = await response.json()
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert body["error"]["code"] == "overloaded"
        # The service counts a call as its handler returns, which may be just after the
        # client has the answer: wait for the count, then check no retry followed.
        for _ in range(500):
            if shedding.metrics.requests_answered() >= 1:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert shedding.metrics.requests_answered() == 1  # RESOURCE_EXHAUSTED: no retry
