"""Server-streaming calls through the in-process channel: messages, outcomes, backpressure.

Probe handlers pin the rules down; then WatchExecution, the service's own
streaming RPC, is watched in-process while a writer drives an execution, as
single-process mode serves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from singleprocess.channel import InProcessChannel
from singleprocess.handlers import service_handlers
from tests.support.running_service import RunningService, Stubs, auth, stubs
from tests.support.watching import DRIVEN_KINDS, Driver, events_until, kind, watch

Context = grpc.aio.ServicerContext[Any, Any]


class StreamProbe:
    def __init__(self) -> None:
        self.written = 0
        self.cancelled = asyncio.Event()

    async def writes(self, request: bytes, context: Context) -> None:
        for part in request.split(b","):
            await context.write(part.upper())
        context.set_trailing_metadata((("trailing", "yes"),))

    async def yields(self, request: bytes, context: Context) -> AsyncIterator[bytes]:
        for part in request.split(b","):
            yield part

    async def fails_midway(self, request: bytes, context: Context) -> None:
        await context.write(b"first")
        await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")

    async def endless(self, request: bytes, context: Context) -> None:
        try:
            while True:
                await context.write(b"x" * 1000)
                self.written += 1
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


def probe_channel(probe: StreamProbe) -> InProcessChannel:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        name: grpc.unary_stream_rpc_method_handler(getattr(probe, name))
        for name in ("writes", "yields", "fails_midway", "endless")
    }
    return InProcessChannel([grpc.method_handlers_generic_handler("test.Stream", handlers)])


def stream(
    channel: grpc.aio.Channel, name: str, request: bytes = b"", **kwargs: Any
) -> grpc.aio.UnaryStreamCall[Any, Any]:
    method: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
        f"/test.Stream/{name}"
    )
    return method(request, **kwargs)


@pytest.mark.asyncio
async def test_written_and_yielded_messages_arrive_in_order_then_ok() -> None:
    async with probe_channel(StreamProbe()) as channel:
        call = stream(channel, "writes", b"a,b,c")
        assert [message async for message in call] == [b"A", b"B", b"C"]
        assert await call.code() is grpc.StatusCode.OK
        assert tuple(await call.trailing_metadata()) == (("trailing", "yes"),)
        call = stream(channel, "yields", b"x,y")
        assert await call.read() == b"x"
        assert await call.read() == b"y"
        assert await call.read() is grpc.aio.EOF


@pytest.mark.asyncio
async def test_an_abort_after_a_message_fails_the_stream_after_that_message() -> None:
    async with probe_channel(StreamProbe()) as channel:
        call = stream(channel, "fails_midway")
        assert await call.read() == b"first"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call.read()
        assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
        assert raised.value.details() == "going away"


@pytest.mark.asyncio
async def test_a_caller_that_stops_reading_stops_the_handler_and_cancel_ends_it() -> None:
    probe = StreamProbe()
    async with probe_channel(probe) as channel:
        call = stream(channel, "endless")
        assert await call.read() == b"x" * 1000
        await asyncio.sleep(0.2)
        assert probe.written <= 2  # one taken, one waiting in the slot
        call.cancel()
        async with asyncio.timeout(1.0):
            await probe.cancelled.wait()
        assert await call.code() is grpc.StatusCode.CANCELLED


@pytest.mark.asyncio
async def test_the_deadline_ends_a_stream() -> None:
    async with probe_channel(StreamProbe()) as channel:
        call = stream(channel, "endless", timeout=0.2)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in call:
                pass
        assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.asyncio
async def test_watch_execution_in_process_sees_what_it_sees_over_grpc(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    demo = running_service.demo
    metadata = auth(demo.api_key)
    writer = Driver(service_stubs, metadata, demo.retriever.name)
    execution_id = await writer.start()
    async with InProcessChannel(service_handlers(running_service.server)) as in_process:
        call = watch(stubs(in_process), metadata, demo.retriever.name, execution_id)
        (snapshot,) = await events_until(call, 1)
        assert snapshot.snapshot.execution.execution_id == execution_id
        drive = asyncio.create_task(writer.run(interval=0.02))
        events = [event async for event in call]
        await drive
        assert [kind(event) for event in events] == DRIVEN_KINDS
        assert await call.code() is grpc.StatusCode.OK

        missing = watch(stubs(in_process), metadata, demo.retriever.name, "exec_missing")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await missing.read()
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert running_service.server.watch_hub.watchers == 0
