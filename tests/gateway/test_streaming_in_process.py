"""The gateway's streams over single-process mode's in-process channel.

The channel's own rules are `tests/singleprocess/test_stream.py`'s;
here the gateway's way of reading (a read task it never cancels, the RPC
cancelled in core when the client leaves) works on it too, and the test-only
library's `WatchShelfEvents` is served over it exactly as over gRPC.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import grpc
import pytest
from aiohttp import web
from execgate.testing.v1 import library_pb2, library_pb2_grpc

from gateway import stream_dispatch
from gateway.config import GatewayConfig
from gateway.stream_rpc import WAITING, UpstreamStream
from singleprocess.channel import InProcessChannel
from singleprocess.handlers import HandlerCollector
from tests.support.gateway_harness import LIBRARY_SERVICES, running_gateway
from tests.support.library_servicer import Library, ShelfWatchServicer
from tests.support.stream_client import read_sse_event

Context = grpc.aio.ServicerContext[Any, Any]


class StreamProbe:
    def __init__(self) -> None:
        self.produced = 0
        self.cancelled = asyncio.Event()

    async def count(self, request: bytes, context: Context) -> AsyncIterator[bytes]:
        """`int(request)` messages, then OK; yielded as an async generator."""
        try:
            for index in range(int(request)):
                self.produced += 1
                yield str(index).encode()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def write_then_abort(self, request: bytes, context: Context) -> None:
        """Two messages through `context.write`, then NOT_FOUND with trailing metadata."""
        await context.write(b"a")
        await context.write(b"b")
        await context.abort(grpc.StatusCode.NOT_FOUND, "gone", (("etag", '"x"'),))

    async def forever(self, request: bytes, context: Context) -> AsyncIterator[bytes]:
        yield b"first"
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        yield b"never"


def probe_channel(probe: StreamProbe) -> InProcessChannel:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        name: grpc.unary_stream_rpc_method_handler(getattr(probe, name))
        for name in ("count", "write_then_abort", "forever")
    }
    return InProcessChannel([grpc.method_handlers_generic_handler("test.Probe", handlers)])


def stream(
    channel: grpc.aio.Channel, name: str, request: bytes = b"", **kwargs: Any
) -> grpc.aio.UnaryStreamCall[Any, Any]:
    method: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
        f"/test.Probe/{name}"
    )
    return method(request, **kwargs)


@pytest.mark.asyncio
async def test_the_gateways_disconnect_path_cancels_the_handler_at_once() -> None:
    probe = StreamProbe()
    async with probe_channel(probe) as channel:
        upstream = UpstreamStream(stream(channel, "forever"))
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        assert await upstream.next(1.0, never) == b"first"
        assert await upstream.next(0.05, never) is WAITING  # a read stays pending
        upstream.cancel()
        await asyncio.wait_for(probe.cancelled.wait(), 1.0)


def _watch_channel(library: Library) -> InProcessChannel:
    """The library's watch service in-process, with its shelf `s1`."""
    collector = HandlerCollector()
    # The collector takes what a server would (the generated stubs type it as a server).
    server = cast(grpc.aio.Server, collector)
    library_pb2_grpc.add_ShelfWatchServiceServicer_to_server(ShelfWatchServicer(library), server)
    library.shelves["s1"] = library_pb2.Shelf(id="s1", theme="t")
    return InProcessChannel(collector.handlers)


@pytest.mark.asyncio
async def test_the_gateway_streams_over_the_in_process_channel() -> None:
    library = Library()
    app_channel = _watch_channel(library)
    config = GatewayConfig(port=0, services=LIBRARY_SERVICES, shutdown_timeout_s=2.0)
    sse = {"Accept": "text/event-stream"}
    async with (
        running_gateway(config, channel_factory=lambda _: app_channel) as gateway,
        aiohttp.ClientSession(base_url=gateway.base_url) as http,
    ):
        async with http.get("/v1/shelves/nope/events:watch", headers=sse) as response:
            assert response.status == 404
        response = await http.get("/v1/shelves/s1/events:watch", headers=sse)
        snapshot = await read_sse_event(response.content)
        assert (snapshot.event, snapshot.id) == ("snapshot", "0")
        library.add_book(library_pb2.Book(shelf_id="s1", id="b1", title="T"))
        added = await read_sse_event(response.content)
        assert (added.event, added.id, added.data["book_added"]["id"]) == ("book_added", "1", "b1")
        closed_at = asyncio.get_running_loop().time()
        response.close()
        deadline = time.monotonic() + 2
        while not library.event_stream_ends:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert library.event_stream_ends[0] - closed_at < 1.0


class _UnstartableResponse(web.StreamResponse):
    async def prepare(self, request: web.BaseRequest) -> None:
        raise RuntimeError("the answer cannot start")


@pytest.mark.asyncio
async def test_a_stream_whose_answer_cannot_start_cancels_its_upstream_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In-process, nothing but the gateway ends a call: one left running would
    # hold its handler until the stream timeout.
    library = Library()
    app_channel = _watch_channel(library)
    config = GatewayConfig(port=0, services=LIBRARY_SERVICES, shutdown_timeout_s=2.0)
    monkeypatch.setattr(stream_dispatch, "_stream_response", lambda *_: _UnstartableResponse())
    async with (
        running_gateway(config, channel_factory=lambda _: app_channel) as gateway,
        aiohttp.ClientSession(base_url=gateway.base_url) as http,
    ):
        async with http.get("/v1/shelves/s1/events:watch") as response:
            assert response.status == 500
        deadline = time.monotonic() + 2
        while library.open_event_streams:
            assert time.monotonic() < deadline, "the upstream call is still open"
            await asyncio.sleep(0.01)
        assert len(library.event_stream_ends) == 1
