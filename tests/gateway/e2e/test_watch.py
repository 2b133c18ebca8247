"""WatchExecution over REST: gateway → real service → SQLite, on 127.0.0.1 (port 0).

A writer drives a fresh execution through the gRPC write path (`Driver`)
while a REST watcher reads the gateway's SSE or NDJSON stream of it; the
PostgreSQL variant, with the writer on another replica, is in
`tests/service/store/postgres/test_gateway_watch.py`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import grpc
import pytest

from gateway.config import GatewayConfig
from service.rpc.watch import WatchSettings
from singleprocess.channel import InProcessChannel
from singleprocess.handlers import service_handlers
from tests.support.gateway_harness import RunningGateway, running_gateway
from tests.support.running_service import RunningService, Stubs, auth, start_service, stubs
from tests.support.stream_client import StreamEvent, events_to_the_end, next_event
from tests.support.watching import DRIVEN_KINDS, Driver

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"


def rest_kind(event: StreamEvent) -> tuple[str, str]:
    """(event name, stage name) as `tests.support.watching.kind` gives for gRPC events."""
    member = event.data[event.name]
    return event.name, member.get("stage_name", "") if isinstance(member, dict) else ""


def watch_url(gateway: RunningGateway, retriever: str, execution_id: str) -> str:
    return f"{gateway.base_url}/v1/retrievers/{retriever}/executions/{execution_id}:watch"


def rest_auth(service: RunningService, accept: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {service.demo.api_key}", "Accept": accept}


def driver(service: RunningService, calls: Stubs) -> Driver:
    return Driver(calls, auth(service.demo.api_key), service.demo.retriever.name)


async def watch_lifecycle(
    gateway: RunningGateway, service: RunningService, writer: Driver, accept: str
) -> None:
    """A REST watcher sees pending, each stage, then completed, as the writer drives it."""
    execution_id = await writer.start()
    url = watch_url(gateway, service.demo.retriever.id, execution_id)
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers=rest_auth(service, accept)) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == accept
        snapshot = await next_event(response)
        assert snapshot is not None
        assert (snapshot.name, snapshot.id) == ("snapshot", "0")
        assert snapshot.data["snapshot"]["execution"]["status"] == "pending"
        drive = asyncio.create_task(writer.run(interval=0.05))
        events = await events_to_the_end(response, timeout_s=15.0)
        await drive
        async with http.get(
            url.removesuffix(":watch"), headers=rest_auth(service, "application/json")
        ) as detail:
            final = await detail.json()
    assert [rest_kind(event) for event in events] == DRIVEN_KINDS
    assert [event.id for event in events] == [str(n) for n in range(1, len(events) + 1)]
    progress = [e.data["stage_progress"] for e in events if e.name == "stage_progress"]
    assert {p["status"] for p in progress} == {"processing"}
    assert events[-1].data["completed"] == final  # the same JSON GetExecution renders
    assert final["status"] == "completed"


@pytest.mark.asyncio
@pytest.mark.parametrize("accept", [SSE, NDJSON])
async def test_a_rest_watcher_sees_pending_each_stage_then_completed(
    gateway: RunningGateway, running_service: RunningService, service_stubs: Stubs, accept: str
) -> None:
    await watch_lifecycle(gateway, running_service, driver(running_service, service_stubs), accept)
    assert running_service.server.watch_hub.watchers == 0


@pytest.mark.asyncio
async def test_last_event_id_resumes_after_that_event(
    gateway: RunningGateway, running_service: RunningService, service_stubs: Stubs
) -> None:
    writer = driver(running_service, service_stubs)
    execution_id = await writer.start()
    await writer.run()
    url = watch_url(gateway, running_service.demo.retriever.id, execution_id)
    headers = {**rest_auth(running_service, SSE), "Last-Event-ID": "4"}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        events = await events_to_the_end(response)
    assert [rest_kind(event) for event in events] == DRIVEN_KINDS[4:]
    assert events[0].id == "5"


@pytest.mark.asyncio
@pytest.mark.parametrize("accept", [SSE, NDJSON])
async def test_404_and_401_before_the_stream_are_real_statuses(
    gateway: RunningGateway, running_service: RunningService, accept: str
) -> None:
    demo = running_service.demo
    completed = demo.executions["completed_10"]
    unknown = completed[:-4] + ("0000" if not completed.endswith("0000") else "1111")
    async with aiohttp.ClientSession() as http:
        url = watch_url(gateway, demo.retriever.id, unknown)
        async with http.get(url, headers=rest_auth(running_service, accept)) as response:
            assert response.status == 404
            body = await response.json()
        assert body["error"]["type"] == "NotFoundError"
        url = watch_url(gateway, demo.retriever.id, completed)
        async with http.get(url, headers={"Accept": accept}) as response:
            assert response.status == 401
            assert (await response.json())["status"] == 401
        # A terminal execution: its snapshot, and the stream ends.
        async with http.get(url, headers=rest_auth(running_service, accept)) as response:
            events = await events_to_the_end(response)
    assert [event.name for event in events] == ["snapshot"]
    assert events[0].data["snapshot"]["execution"]["status"] == "completed"


@pytest.mark.asyncio
@pytest.mark.parametrize("accept", [SSE, NDJSON])
async def test_an_error_mid_stream_is_an_error_event(tmp_path: Path, accept: str) -> None:
    # The service ends a stream at its maximum duration: UNAVAILABLE, after events were sent.
    settings = WatchSettings(keepalive_seconds=0, max_stream_seconds=0.5)
    async with start_service(tmp_path, watch=settings) as service:
        config = GatewayConfig(port=0, backend=service.address, shutdown_timeout_s=2.0)
        async with running_gateway(config) as gateway, aiohttp.ClientSession() as http:
            demo = service.demo
            url = watch_url(gateway, demo.retriever.id, demo.executions["processing"])
            async with http.get(url, headers=rest_auth(service, accept)) as response:
                assert response.status == 200
                events = await events_to_the_end(response)
    assert [event.name for event in events] == ["snapshot", "error"]
    error = events[1].data
    assert error["status"] == 503
    assert error["error"]["code"] == "stream_duration_limit"
    assert error["success"] is False


@pytest.mark.asyncio
async def test_disconnect_cancels_the_upstream_watch_within_a_second(
    gateway: RunningGateway, running_service: RunningService
) -> None:
    demo = running_service.demo
    url = watch_url(gateway, demo.retriever.id, demo.executions["processing"])
    async with aiohttp.ClientSession() as http:
        response = await http.get(url, headers=rest_auth(running_service, SSE))
        assert (await next_event(response)) is not None
        hub = running_service.server.watch_hub
        assert hub.watchers == 1
        closed_at = time.monotonic()
        response.close()
        while hub.watchers:
            assert time.monotonic() - closed_at < 1.0
            await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_single_process_mode_serves_the_watch_too(tmp_path: Path) -> None:
    async with start_service(tmp_path) as service:
        channel = InProcessChannel(service_handlers(service.server))
        config = GatewayConfig(port=0, shutdown_timeout_s=2.0)
        async with (
            running_gateway(config, channel_factory=lambda _: channel) as gateway,
            grpc.aio.insecure_channel(service.address) as writer_channel,
        ):
            writer = driver(service, stubs(writer_channel))
            await watch_lifecycle(gateway, service, writer, SSE)


@pytest.mark.asyncio
async def test_watchers_of_one_execution_share_one_upstream_call(
    gateway: RunningGateway, running_service: RunningService, service_stubs: Stubs
) -> None:
    """Ten REST watchers with one key hold one WatchExecution call; each sees every event."""
    writer = driver(running_service, service_stubs)
    execution_id = await writer.start()
    url = watch_url(gateway, running_service.demo.retriever.id, execution_id)
    metrics = running_service.server.metrics
    async with aiohttp.ClientSession() as http:
        responses = [
            await http.get(url, headers=rest_auth(running_service, SSE)) for _ in range(10)
        ]
        try:
            for response in responses:
                snapshot = await next_event(response)
                assert snapshot is not None
                assert (snapshot.name, snapshot.id) == ("snapshot", "0")
            deadline = time.monotonic() + 5.0
            while metrics.watch_streams != 1:
                assert time.monotonic() < deadline, f"{metrics.watch_streams} upstream calls"
                await asyncio.sleep(0.01)
            drive = asyncio.create_task(writer.run(interval=0.05))
            seen = [await events_to_the_end(response, timeout_s=15.0) for response in responses]
            await drive
        finally:
            for response in responses:
                response.close()
    for events in seen:
        assert [rest_kind(event) for event in events] == DRIVEN_KINDS
        assert [event.id for event in events] == [str(n) for n in range(1, len(events) + 1)]
    assert running_service.server.watch_hub.watchers == 0
