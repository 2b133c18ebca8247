"""`gateway.unary_rpc`: both ways of making a unary call behave the same against a real server.

`CoreUnaryRpc` drives grpc.aio's private Cython call object (grpcio is pinned);
these tests are what upgrading grpcio must keep green: replies and metadata,
every failure as `grpc.aio.AioRpcError`, deadlines, and a cancelled wait that
cancels the RPC in core (the server sees it) while the call's task ends by
itself. The memory side of cancellation is test_unary_rpc_cancel_memory.py.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf.wrappers_pb2 import StringValue

from gateway import grpc_aio_private
from gateway.unary_rpc import CoreUnaryRpc, PublicUnaryRpc, UnaryRpc, unary_rpc
from singleprocess.channel import DirectUnaryRpc, InProcessChannel

METHOD = "/t.Echo/Say"
IMPLEMENTATIONS = ("core", "public")
pytestmark = pytest.mark.asyncio


@dataclass
class Echo:
    """Answers `hello` with initial and trailing metadata; other words fail or stall."""

    seen_metadata: list[dict[str, str | bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def say(self, request: StringValue, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self.seen_metadata.append(dict(context.invocation_metadata() or ()))
        if request.value == "missing":
            await context.abort(
                grpc.StatusCode.NOT_FOUND, "no such thing", trailing_metadata=(("why", "gone"),)
            )
        if request.value == "stall":
            self.arrived.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:  # grpc.aio's answer to a cancelled RPC
                self.cancelled.set()
                raise
        await context.send_initial_metadata((("etag", '"v1"'),))
        context.set_trailing_metadata((("cache-control", "private"), ("blob-bin", b"\x00\x01")))
        return StringValue(value=f"{request.value}, world")


@dataclass
class Running:
    echo: Echo
    target: str
    channel: grpc.aio.Channel


@pytest_asyncio.fixture
async def running() -> AsyncIterator[Running]:
    echo = Echo()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "t.Echo",
                {
                    "Say": grpc.unary_unary_rpc_method_handler(
                        echo.say,
                        request_deserializer=StringValue.FromString,
                        response_serializer=StringValue.SerializeToString,
                    )
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    target = f"127.0.0.1:{port}"
    async with grpc.aio.insecure_channel(target) as channel:
        yield Running(echo, target, channel)
    await server.stop(None)


def _rpc(kind: str, channel: grpc.aio.Channel) -> UnaryRpc:
    if kind == "core":
        return CoreUnaryRpc(channel, METHOD, StringValue.FromString)
    return PublicUnaryRpc(channel, METHOD, StringValue.FromString)


async def test_a_plain_grpc_aio_channel_takes_the_core_path(running: Running) -> None:
    assert isinstance(unary_rpc(running.channel, METHOD, StringValue.FromString), CoreUnaryRpc)


async def test_interceptors_take_the_public_path(running: Running) -> None:
    class Passing(grpc.aio.UnaryUnaryClientInterceptor):
        async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            return await continuation(details, request)

    async with grpc.aio.insecure_channel(running.target, interceptors=[Passing()]) as intercepted:
        rpc = unary_rpc(intercepted, METHOD, StringValue.FromString)
        assert isinstance(rpc, PublicUnaryRpc)
        reply = await rpc(StringValue(value="hello"), 5.0, ())
        assert reply.message == StringValue(value="hello, world")


async def test_a_channel_with_its_own_unary_rpc_is_called_through_it() -> None:
    rpc = unary_rpc(InProcessChannel({}), METHOD, StringValue.FromString)
    assert isinstance(rpc, DirectUnaryRpc)


async def test_every_private_name_the_core_path_uses_exists(running: Running) -> None:
    # Fails after a grpcio upgrade that renamed one: the gateway would then run on the
    # public path (see docs/upgrading.md).
    assert grpc_aio_private.missing_private_name(running.channel) is None
    assert grpc_aio_private.missing_private_name(object()) == (
        "grpc.aio channel attribute _channel"
    )


async def test_a_missing_private_name_means_the_public_path_and_one_warning(
    running: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cygrpc = importlib.import_module("grpc._cython.cygrpc")
    monkeypatch.delattr(cygrpc, "_AioCall")  # as if an upgrade had renamed it
    grpc_aio_private.warn_public_path.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="execgate.gateway"):
            rpcs = [unary_rpc(running.channel, METHOD, StringValue.FromString) for _ in range(3)]
    finally:
        grpc_aio_private.warn_public_path.cache_clear()
    assert all(isinstance(rpc, PublicUnaryRpc) for rpc in rpcs)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "grpc._cython.cygrpc._AioCall" in warnings[0]
    reply = await rpcs[0](StringValue(value="hello"), 5.0, ())
    assert reply.message == StringValue(value="hello, world")


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
async def test_reply_and_metadata(running: Running, kind: str) -> None:
    rpc = _rpc(kind, running.channel)
    reply = await rpc(StringValue(value="hello"), 5.0, (("x-request-id", "r1"), ("k", "v")))
    assert reply.message == StringValue(value="hello, world")
    assert ("etag", '"v1"') in reply.initial_metadata
    assert ("cache-control", "private") in reply.trailing_metadata
    assert ("blob-bin", b"\x00\x01") in reply.trailing_metadata
    seen = running.echo.seen_metadata[-1]
    assert seen["x-request-id"] == "r1"
    assert seen["k"] == "v"


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
async def test_a_failure_is_an_aio_rpc_error_with_its_metadata(running: Running, kind: str) -> None:
    rpc = _rpc(kind, running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await rpc(StringValue(value="missing"), 5.0, ())
    error = caught.value
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == "no such thing"
    assert ("why", "gone") in tuple(error.trailing_metadata() or ())


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
async def test_the_deadline_holds(running: Running, kind: str) -> None:
    rpc = _rpc(kind, running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(rpc(StringValue(value="stall"), 0.2, ()), timeout=5)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
async def test_an_unreachable_backend_is_unavailable(kind: str) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _rpc(kind, channel)(StringValue(value="hello"), 5.0, ())
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
async def test_a_cancelled_wait_cancels_the_rpc_and_leaves_no_task(
    running: Running, kind: str
) -> None:
    rpc = _rpc(kind, running.channel)
    waiting = asyncio.create_task(rpc(StringValue(value="stall"), 30.0, ()))
    await asyncio.wait_for(running.echo.arrived.wait(), timeout=5.0)
    assert _client_call_tasks()  # in flight: the filter below sees it
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(running.echo.cancelled.wait(), timeout=1.0)  # the server saw it
    for _ in range(100):  # the call's own task ends by itself, soon
        if not _client_call_tasks():
            break
        await asyncio.sleep(0.01)
    assert not _client_call_tasks()


def _client_call_tasks() -> list[asyncio.Task[Any]]:
    # The task running a call's batch: grpc.aio's `_invoke`, or the Cython `unary_unary`.
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_coro().__qualname__.endswith(("unary_unary", "UnaryUnaryCall._invoke"))  # type: ignore[union-attr]
    ]


async def test_a_closed_channel_refuses_calls(running: Running) -> None:
    rpc = _rpc("core", running.channel)
    await running.channel.close()
    with pytest.raises(Exception, match=r"[Cc]losed"):
        await rpc(StringValue(value="hello"), 5.0, ())
