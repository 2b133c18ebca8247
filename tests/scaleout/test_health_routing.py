"""The gateway's channel routes only to replicas whose health is SERVING.

That is what makes `--drain-seconds` work: a replica about to stop reports
NOT_SERVING and stops receiving new calls before it closes, and a replica
that cannot reach its store is skipped while the others answer.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gateway.config import GatewayConfig
from gateway.upstream import channel_options

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
WATCH_DELAY_S = 0.2


@pytest_asyncio.fixture
async def replicas() -> AsyncIterator[list[tuple[int, health.aio.HealthServicer]]]:
    """Two gRPC servers with nothing but health, both SERVING."""
    started = []
    servers = []
    for _ in range(2):
        server = grpc.aio.server()
        servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        await servicer.set("", SERVING)
        servers.append(server)
        started.append((port, servicer))
    yield started
    for server in servers:
        await server.stop(0)


async def statuses_seen(stub: health_pb2_grpc.HealthStub, calls: int) -> Counter[int]:
    """What the replicas that answered said about themselves."""
    seen: Counter[int] = Counter()
    for _ in range(calls):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        seen[reply.status] += 1
    return seen


@pytest.mark.asyncio
async def test_calls_go_only_to_serving_replicas(
    replicas: list[tuple[int, health.aio.HealthServicer]],
) -> None:
    config = GatewayConfig(backend=",".join(f"127.0.0.1:{port}" for port, _ in replicas))
    (_, draining), (_, healthy) = replicas
    async with grpc.aio.insecure_channel(
        config.grpc_target, options=channel_options(config)
    ) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert await statuses_seen(stub, 10) == {SERVING: 10}

        # The health watch stream tells the channel within milliseconds; a
        # call that reached the draining replica would come back NOT_SERVING.
        await draining.set("", NOT_SERVING)
        await asyncio.sleep(WATCH_DELAY_S)
        assert await statuses_seen(stub, 20) == {SERVING: 20}

        await healthy.set("", NOT_SERVING)
        await asyncio.sleep(WATCH_DELAY_S)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await statuses_seen(stub, 1)
        assert raised.value.code() is grpc.StatusCode.UNAVAILABLE

        await draining.set("", SERVING)
        await healthy.set("", SERVING)
        for _ in range(50):  # back in rotation as soon as the watch reports it
            try:
                assert await statuses_seen(stub, 10) == {SERVING: 10}
                break
            except grpc.aio.AioRpcError:
                continue
        else:
            pytest.fail("the replicas did not come back into rotation")
