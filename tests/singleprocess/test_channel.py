"""The in-process channel's gRPC semantics: outcomes, metadata, deadline, cancellation.

Probe handlers (registered exactly as a grpc.aio server would take them) pin
each rule down; the service's own handlers then answer through generated stubs
exactly as they answer over a real channel.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.unary_rpc import cancel_rpc, wait_until_done
from singleprocess.channel import InProcessChannel
from singleprocess.handlers import service_handlers
from tests.support.inprocess_probe import DETAILS_KEY, Probe, probe_channel
from tests.support.running_service import RunningService, auth, stubs


def call(
    channel: grpc.aio.Channel, name: str, request: bytes = b"", **kwargs: Any
) -> grpc.aio.UnaryUnaryCall[Any, Any]:
    probe: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/test.Probe/{name}"
    )
    return probe(request, **kwargs)


@pytest.mark.asyncio
async def test_a_call_carries_metadata_both_ways_and_the_response_bytes() -> None:
    probe = Probe()
    async with probe_channel(probe) as channel:
        rpc = call(channel, "echo", b"hello", metadata=(("x-request-id", "r1"),))
        assert await rpc == b"HELLO"
        assert tuple(await rpc.initial_metadata()) == (("initial", "yes"),)
        assert tuple(await rpc.trailing_metadata()) == (("trailing", "yes"),)
        assert await rpc.code() is grpc.StatusCode.OK
        assert rpc.done()
    assert probe.seen["metadata"] == (("x-request-id", "r1"),)
    assert probe.seen["peer"] == "in-process"


@pytest.mark.asyncio
async def test_abort_fails_the_call_with_its_status_details_and_trailing_metadata() -> None:
    async with probe_channel(Probe()) as channel:
        rpc = call(channel, "abort")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await rpc
    error = raised.value
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == "Execution exec_x not found"
    assert tuple(error.trailing_metadata()) == ((DETAILS_KEY, b"\x08\x05"),)
    assert await rpc.code() is grpc.StatusCode.NOT_FOUND


@pytest.mark.asyncio
async def test_set_code_without_abort_fails_the_call() -> None:
    async with probe_channel(Probe()) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(channel, "set_code")
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.details() == "not now"


@pytest.mark.asyncio
async def test_an_escaping_exception_is_unknown_without_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with probe_channel(Probe()) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(channel, "boom")
    assert raised.value.code() is grpc.StatusCode.UNKNOWN
    assert "secret" not in (raised.value.details() or "")
    assert "secret internals" in caplog.text  # kept in the log


@pytest.mark.asyncio
async def test_the_deadline_cancels_the_handler_and_answers_deadline_exceeded() -> None:
    probe = Probe()
    async with probe_channel(probe) as channel:
        rpc = call(channel, "sleep", timeout=0.05)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(rpc, 5)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert probe.seen["cancelled_with_remaining"] == 0  # as the service's guard reads it


@pytest.mark.asyncio
async def test_cancelling_the_awaiting_task_cancels_the_handler() -> None:
    probe = Probe()
    async with probe_channel(probe) as channel:
        rpc = call(channel, "sleep")
        waiter = asyncio.ensure_future(rpc)
        await asyncio.wait_for(probe.started.wait(), 5)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert rpc.cancelled()
        assert await rpc.code() is grpc.StatusCode.CANCELLED
    assert probe.seen["cancelled_with_remaining"] > 1  # cancelled, not timed out


@pytest.mark.asyncio
async def test_the_gateways_disconnect_path_cancels_the_handler() -> None:
    # What gateway.dispatch does when the HTTP client goes away mid-call.
    probe = Probe()
    async with probe_channel(probe) as channel:
        rpc = call(channel, "sleep")
        waiter = asyncio.ensure_future(wait_until_done(rpc))
        await asyncio.wait_for(probe.started.wait(), 5)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert not rpc.done()  # the gateway's wait was cancelled, not the call
        cancel_rpc(rpc)
        assert await rpc.code() is grpc.StatusCode.CANCELLED
    assert probe.seen["cancelled_with_remaining"] > 1


@pytest.mark.asyncio
async def test_close_cancels_calls_in_flight_and_refuses_new_ones() -> None:
    probe = Probe()
    channel = probe_channel(probe)
    rpc = call(channel, "sleep")
    await asyncio.wait_for(probe.started.wait(), 5)
    await channel.close(grace=None)
    assert rpc.cancelled()
    assert channel.get_state() is grpc.ChannelConnectivity.SHUTDOWN
    with pytest.raises(grpc.aio.UsageError):
        call(channel, "echo")


@pytest.mark.asyncio
async def test_an_unknown_method_is_unimplemented_as_over_grpc(
    running_service: RunningService, grpc_channel: grpc.aio.Channel
) -> None:
    method = "/execgate.retrievers.v1.ExecutionService/NoSuchMethod"
    codes = []
    async with InProcessChannel(service_handlers(running_service.server)) as in_process:
        for channel in (in_process, grpc_channel):
            unknown: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await unknown(b"", timeout=5)
            codes.append(raised.value.code())
    assert codes == [grpc.StatusCode.UNIMPLEMENTED] * 2


@pytest.mark.asyncio
async def test_generated_stubs_get_what_they_get_over_grpc(
    running_service: RunningService, grpc_channel: grpc.aio.Channel
) -> None:
    demo = running_service.demo
    metadata = auth(demo.api_key, demo.namespace.name)
    answers = []
    async with InProcessChannel(service_handlers(running_service.server)) as in_process:
        for channel in (in_process, grpc_channel):
            reader = stubs(channel).reader
            request = service_pb2.GetExecutionRequest(
                retriever_id=demo.retriever.id, execution_id=demo.executions["completed_10"]
            )
            call = reader.GetExecution(request, metadata=metadata, timeout=5)
            answers.append((await call, dict(await call.trailing_metadata())))
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    (in_process_reply, in_process_trailing), (grpc_reply, grpc_trailing) = answers
    assert in_process_reply == grpc_reply
    assert in_process_trailing["etag"] == grpc_trailing["etag"]
    assert in_process_trailing["cache-control"] == grpc_trailing["cache-control"] == "private"
