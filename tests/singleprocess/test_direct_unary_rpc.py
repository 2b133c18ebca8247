"""The gateway's direct unary path on the in-process channel: the multi-callable's outcomes.

`DirectUnaryRpc` runs the handler in the caller's task; every outcome a unary
multi-callable gives (tests/singleprocess/test_channel.py) must come out the same.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.wrappers_pb2 import BytesValue

from gateway.unary_rpc import UnaryRpc, unary_rpc
from singleprocess.channel import InProcessChannel
from tests.support.inprocess_probe import DETAILS_KEY, Probe, probe_channel


def direct(channel: InProcessChannel, name: str) -> UnaryRpc:
    return unary_rpc(channel, f"/test.Probe/{name}", BytesValue.FromString)


@pytest.mark.asyncio
async def test_a_call_carries_metadata_both_ways_and_the_response() -> None:
    probe = Probe()
    async with probe_channel(probe) as channel:
        reply = await direct(channel, "echo")(
            BytesValue(value=b"hello"), 5.0, (("x-request-id", "r1"),)
        )
    assert reply.message == BytesValue(value=b"HELLO")  # the probe upper-cases the bytes
    assert tuple(reply.initial_metadata) == (("initial", "yes"),)
    assert tuple(reply.trailing_metadata) == (("trailing", "yes"),)
    assert probe.seen["metadata"] == (("x-request-id", "r1"),)
    assert probe.seen["peer"] == "in-process"


@pytest.mark.asyncio
async def test_abort_raises_its_status_details_and_trailing_metadata() -> None:
    async with probe_channel(Probe()) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await direct(channel, "abort")(BytesValue(), 5.0, ())
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "Execution exec_x not found"
    assert tuple(raised.value.trailing_metadata()) == ((DETAILS_KEY, b"\x08\x05"),)


@pytest.mark.asyncio
async def test_set_code_without_abort_and_an_escaping_exception_fail_the_call() -> None:
    async with probe_channel(Probe()) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as set_code:
            await direct(channel, "set_code")(BytesValue(), 5.0, ())
        with pytest.raises(grpc.aio.AioRpcError) as boom:
            await direct(channel, "boom")(BytesValue(), 5.0, ())
    assert (set_code.value.code(), set_code.value.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "not now",
    )
    assert boom.value.code() is grpc.StatusCode.UNKNOWN
    assert "secret" not in (boom.value.details() or "")


@pytest.mark.asyncio
async def test_the_deadline_cancels_the_handler_and_answers_deadline_exceeded() -> None:
    probe = Probe()
    async with probe_channel(probe) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(direct(channel, "sleep")(BytesValue(), 0.05, ()), 5)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert probe.seen["cancelled_with_remaining"] == 0


@pytest.mark.asyncio
async def test_cancelling_the_caller_cancels_the_handler() -> None:
    probe = Probe()
    async with probe_channel(probe) as channel:
        caller = asyncio.ensure_future(direct(channel, "sleep")(BytesValue(), 60.0, ()))
        await asyncio.wait_for(probe.started.wait(), 5)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
    assert probe.seen["cancelled_with_remaining"] > 1  # cancelled, not timed out


@pytest.mark.asyncio
async def test_unknown_methods_and_a_closed_channel() -> None:
    channel = probe_channel(Probe())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await direct(channel, "no_such_method")(BytesValue(), 5.0, ())
    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
    await channel.close(grace=None)
    with pytest.raises(grpc.aio.UsageError):
        await direct(channel, "echo")(BytesValue(), 5.0, ())
