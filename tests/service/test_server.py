"""The server around the servicers: reflection, health, graceful stop, no leaked exceptions."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import grpc
import pytest
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service.store.protocol import ExecutionRow, StoreUnavailable
from service.store.sqlite import SqliteStore
from tests.support.grpc_calls import failure
from tests.support.running_service import RunningService, auth, start_service, stubs

EXECUTION_SERVICES = {
    "execgate.retrievers.v1.ExecutionService",
    "execgate.retrievers.v1.ExecutionWriterService",
}


class FaultyReads(SqliteStore):
    """The real SQLite store, except that reads wait or raise, and health fails, on demand."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.delay = 0.0
        self.error: Exception | None = None
        self.down = False

    async def healthy(self) -> bool:
        return not self.down and await super().healthy()

    async def get_execution(
        self, namespace_id: str, retriever_id: str, execution_id: str
    ) -> ExecutionRow | None:
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return await super().get_execution(namespace_id, retriever_id, execution_id)


def get_request(service: RunningService) -> service_pb2.GetExecutionRequest:
    return service_pb2.GetExecutionRequest(
        retriever_id=service.demo.retriever.name,
        execution_id=service.demo.executions["completed_10"],
    )


@pytest.mark.asyncio
async def test_reflection_lists_the_services(
    running_service: RunningService, grpc_channel: grpc.aio.Channel
) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(grpc_channel)
    responses: Any = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = set()
    async for response in responses:
        names |= {service.name for service in response.list_services_response.service}
    assert EXECUTION_SERVICES | {"grpc.health.v1.Health"} <= names

    symbol: Any = stub.ServerReflectionInfo(
        iter(
            [
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="execgate.retrievers.v1.ExecutionService"
                )
            ]
        )
    )
    async for response in symbol:
        assert response.file_descriptor_response.file_descriptor_proto


@pytest.mark.asyncio
async def test_health_serving_then_not_serving_during_shutdown(
    running_service: RunningService, grpc_channel: grpc.aio.Channel
) -> None:
    health = health_pb2_grpc.HealthStub(grpc_channel)
    for name in ("", *EXECUTION_SERVICES):
        response = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert response.status == health_pb2.HealthCheckResponse.SERVING

    stopping = asyncio.create_task(
        running_service.server.stop(grace_seconds=1.0, drain_seconds=0.5)
    )
    await asyncio.sleep(0.1)
    for name in ("", *EXECUTION_SERVICES):
        response = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING
    # While draining, calls are still answered.
    detail = await stubs(grpc_channel).reader.GetExecution(
        get_request(running_service), metadata=auth(running_service.demo.api_key)
    )
    assert detail.execution_id == running_service.demo.executions["completed_10"]
    await stopping
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
async def test_in_flight_calls_finish_during_graceful_stop(tmp_path: Path) -> None:
    store = FaultyReads(tmp_path / "execgate.db")
    async with start_service(tmp_path, store=store) as service:
        store.delay = 0.5
        async with grpc.aio.insecure_channel(service.address) as channel:
            call = stubs(channel).reader.GetExecution(
                get_request(service), metadata=auth(service.demo.api_key)
            )
            await asyncio.sleep(0.1)  # the call is now waiting in the store
            await service.server.stop(grace_seconds=5.0)
            detail = await call
            assert detail.execution_id == service.demo.executions["completed_10"]


@pytest.mark.asyncio
async def test_unexpected_exception_answers_internal_without_details(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FaultyReads(tmp_path / "execgate.db")
    async with start_service(tmp_path, store=store) as service:
        store.error = KeyError("/srv/secret/path.db")
        async with grpc.aio.insecure_channel(service.address) as channel:
            with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as raised:
                await stubs(channel).reader.GetExecution(
                    get_request(service),
                    metadata=auth(service.demo.api_key, request_id="req-7f3a"),
                )
    got = failure(raised.value)
    assert got.code is grpc.StatusCode.INTERNAL
    assert got.message == "Internal error"
    assert got.reason == "INTERNAL"
    assert got.metadata == {}
    text = repr(raised.value)
    assert "KeyError" not in text
    assert "secret" not in text
    assert "Unexpected" not in text
    logged = [r for r in caplog.records if "req-7f3a" in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None
    assert service.demo.api_key not in caplog.text


@pytest.mark.asyncio
async def test_store_unavailable_answers_unavailable_with_retry_after(tmp_path: Path) -> None:
    store = FaultyReads(tmp_path / "execgate.db")
    async with start_service(tmp_path, store=store) as service:
        store.error = StoreUnavailable("database is locked")
        async with grpc.aio.insecure_channel(service.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stubs(channel).reader.GetExecution(
                    get_request(service), metadata=auth(service.demo.api_key)
                )
    got = failure(raised.value)
    assert got.code is grpc.StatusCode.UNAVAILABLE
    assert got.reason == "BACKEND_UNAVAILABLE"
    assert "locked" not in got.message
    trailers = dict(raised.value.trailing_metadata() or ())
    assert trailers["retry-after"] == "1"


@pytest.mark.asyncio
async def test_a_request_that_does_not_parse_is_invalid_argument(
    running_service: RunningService, grpc_channel: grpc.aio.Channel
) -> None:
    raw_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
    raw_call = grpc_channel.unary_unary("/execgate.retrievers.v1.ExecutionService/GetExecution")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await raw_call(b"\xff\xff\xff", metadata=auth(running_service.demo.api_key))
    got = failure(raised.value)
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.metadata == {"field": "request"}
    assert "Unexpected" not in got.message
    assert "DecodeError" not in got.message


@pytest.mark.asyncio
async def test_health_follows_the_store(tmp_path: Path) -> None:
    store = FaultyReads(tmp_path / "execgate.db")
    async with (
        start_service(tmp_path, store=store, store_check_seconds=0.05) as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)

        async def statuses() -> set[int]:
            return {
                (await health.Check(health_pb2.HealthCheckRequest(service=name))).status
                for name in ("", *EXECUTION_SERVICES)
            }

        async def wait_for(status: int) -> None:
            for _ in range(100):
                if await statuses() == {status}:
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"health never became {status}")

        await wait_for(health_pb2.HealthCheckResponse.SERVING)
        store.down = True
        await wait_for(health_pb2.HealthCheckResponse.NOT_SERVING)
        store.down = False
        await wait_for(health_pb2.HealthCheckResponse.SERVING)
