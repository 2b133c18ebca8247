"""Watchers of the same stream share one upstream call (`gateway.stream_share`).

The backend is the test-only library on 127.0.0.1 port 0 (`WatchShelfEvents`:
a snapshot whose `event_id` is the shelf's log position, then one event per
book); its `open_event_streams` counts the upstream calls the gateway holds.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import uvloop

from gateway.app import LIFECYCLE, ROUTES
from gateway.config import GatewayConfig
from gateway.stream_dispatch import StreamingDispatcher
from gateway.stream_share import SharedStreams, Subscriber
from tests.support.gateway_harness import LIBRARY_SERVICES, RunningGateway, running_gateway
from tests.support.library_servicer import RunningLibrary, serve_library
from tests.support.stream_client import SseEvent, read_ndjson, read_sse, read_sse_event

SSE = {"Accept": "text/event-stream"}
EVENTS = "/v1/shelves/s1/events:watch"


@pytest_asyncio.fixture
async def library() -> AsyncIterator[RunningLibrary]:
    async with serve_library() as running:
        yield running


def _config(library: RunningLibrary) -> GatewayConfig:
    return GatewayConfig(
        port=0,
        backend=library.address,
        services=LIBRARY_SERVICES,
        shutdown_timeout_s=2.0,
        stream_heartbeat_s=5.0,
        max_streams_per_key=500,
    )


@pytest_asyncio.fixture
async def gateway(library: RunningLibrary) -> AsyncIterator[RunningGateway]:
    async with running_gateway(_config(library)) as running:
        yield running


@pytest_asyncio.fixture
async def http(gateway: RunningGateway) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base_url=gateway.base_url, connector=connector) as session:
        async with session.post("/v1/shelves", json={"id": "s1", "theme": "t"}) as response:
            assert response.status == 200
        yield session


def _shares(gateway: RunningGateway) -> SharedStreams:
    (route,) = [r for r in gateway.app[ROUTES].routes if r.template.source.endswith("events:watch")]
    dispatcher = gateway.app[LIFECYCLE].dispatchers[route]
    assert isinstance(dispatcher, StreamingDispatcher)
    return dispatcher._shares


async def _add_book(http: aiohttp.ClientSession, book_id: str, title: str = "") -> None:
    book = {"id": book_id, "title": title or f"Title {book_id}", "pages": 100}
    async with http.post("/v1/shelves/s1/books", json=book) as response:
        assert response.status == 200, await response.text()


async def _eventually(check: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _watch(
    http: aiohttp.ClientSession, count: int, headers: dict[str, str] | None = None
) -> list[aiohttp.ClientResponse]:
    responses = [await http.get(EVENTS, headers={**SSE, **(headers or {})}) for _ in range(count)]
    for response in responses:
        assert response.status == 200
    return responses


async def _events(response: aiohttp.ClientResponse, count: int) -> list[SseEvent]:
    return [await read_sse_event(response.content) for _ in range(count)]


def _ids(events: list[SseEvent]) -> list[tuple[str, str | None]]:
    return [(event.event, event.id) for event in events]


@pytest.mark.asyncio
async def test_watchers_of_one_stream_share_one_upstream_call_and_get_every_event(
    http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    watchers = await _watch(http, 30)
    for response in watchers:
        assert _ids(await _events(response, 1)) == [("snapshot", "0")]
    await _eventually(lambda: library.library.open_event_streams == 1)
    for number in range(1, 6):
        await _add_book(http, f"b{number}")
    expected = [("book_added", str(number)) for number in range(1, 6)]
    for response in watchers:
        events = await _events(response, 5)
        assert _ids(events) == expected  # every event, in order, once
        assert [event.data["book_added"]["id"] for event in events] == [
            f"b{number}" for number in range(1, 6)
        ]
    assert library.library.open_event_streams == 1
    for response in watchers:
        response.close()


@pytest.mark.asyncio
async def test_a_joiner_gets_its_snapshot_and_every_later_event(
    http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    (first,) = await _watch(http, 1)
    await _events(first, 1)
    await _add_book(http, "b1")
    await _add_book(http, "b2")
    (joiner,) = await _watch(http, 1)
    snapshot = (await _events(joiner, 1))[0]
    assert (snapshot.event, snapshot.id) == ("snapshot", "2")
    await _eventually(lambda: library.library.open_event_streams == 1)
    await _add_book(http, "b3")
    assert _ids(await _events(joiner, 1)) == [("book_added", "3")]
    assert _ids(await _events(first, 3)) == [("book_added", str(n)) for n in (1, 2, 3)]
    # A resuming joiner: its own call replays from its position, then it joins.
    (resumed,) = await _watch(http, 1, {"Last-Event-ID": "1"})
    assert _ids(await _events(resumed, 2)) == [("book_added", "2"), ("book_added", "3")]
    # The same, by the query parameter.
    queried = await http.get(EVENTS, params={"last_event_id": "2"}, headers=SSE)
    assert _ids(await _events(queried, 1)) == [("book_added", "3")]
    await _eventually(lambda: library.library.open_event_streams == 1)
    await _add_book(http, "b4")
    for response in (first, joiner, resumed, queried):
        assert _ids(await _events(response, 1)) == [("book_added", "4")]
        response.close()


@pytest.mark.asyncio
async def test_different_credentials_namespaces_or_framings_never_share(
    http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    variants: list[dict[str, str]] = [
        {"Authorization": "Bearer one"},
        {"Authorization": "Bearer two"},
        {"Authorization": "Bearer one", "X-Namespace": "n1"},
        {"Authorization": "Bearer one", "X-Namespace": "n2"},
        {"Authorization": "Bearer one", "Accept": "application/x-ndjson"},
    ]
    watchers = []
    for headers in variants:
        watchers += await _watch(http, 2, headers)
    for response in watchers:
        await response.content.readline()
    # A joining watcher's own call ends a moment after it joined.
    await _eventually(lambda: library.library.open_event_streams == len(variants))
    assert library.library.open_event_streams == len(variants)
    await _add_book(http, "b1")
    for response in watchers[-2:]:
        assert (await read_ndjson(response.content))["result"]["event_id"] == "1"
    for response in watchers:
        response.close()


@pytest.mark.asyncio
async def test_a_slow_subscriber_is_cut_off_in_band_while_the_others_continue(
    gateway: RunningGateway, http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    _shares(gateway)._max_behind = 4
    readers = await _watch(http, 3)
    for response in readers:
        await _events(response, 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", gateway.port))
    request = f"GET {EVENTS} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    try:
        await _eventually(lambda: sum(1 for s in _shares(gateway) for _ in s.subscribers) == 4)
        books = 120
        title = "t" * 60_000  # enough to fill the slow client's socket buffers many times
        for number in range(1, books + 1):
            await _add_book(http, f"b{number}", title)
            if number % 10 == 0:  # the readers keep up
                for response in readers:
                    events = await _events(response, 10)
                    assert _ids(events)[-1] == ("book_added", str(number))
        assert library.library.open_event_streams == 1
        received = bytearray()
        # Until the error event and the end of the chunked body after it.
        while not (b"event: error\n" in received[-(1 << 17) :] and received.endswith(b"0\r\n\r\n")):
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 10.0)
            assert chunk, "the connection closed before the error event"
            received += chunk
        delivered = received.count(b"event: book_added\n")
        assert 0 < delivered < books
        error = received[received.index(b"event: error\n") :]
        assert b'"status":429' in error
        assert b"stream_fell_behind" in error
        assert b"Last-Event-ID" in error
    finally:
        sock.close()
    for response in readers:
        response.close()


@pytest.mark.asyncio
async def test_the_last_subscriber_leaving_cancels_the_upstream_within_a_second(
    gateway: RunningGateway, http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    watchers = await _watch(http, 3)
    for response in watchers:
        await _events(response, 1)
    await _eventually(lambda: library.library.open_event_streams == 1)
    ends = len(library.library.event_stream_ends)
    watchers[0].close()
    watchers[1].close()
    await asyncio.sleep(0.3)
    assert library.library.open_event_streams == 1  # one subscriber is still there
    closed_at = asyncio.get_running_loop().time()
    watchers[2].close()
    await _eventually(lambda: library.library.open_event_streams == 0, timeout_s=2.0)
    assert library.library.event_stream_ends[-1] - closed_at < 1.0
    assert len(library.library.event_stream_ends) == ends + 1
    assert len(_shares(gateway)) == 0


@pytest.mark.asyncio
async def test_an_upstream_error_reaches_every_subscriber(
    http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    watchers = [await http.get(EVENTS, params={"fail_after": "3"}, headers=SSE) for _ in range(4)]
    for response in watchers:
        assert _ids(await _events(response, 1)) == [("snapshot", "0")]
    await _eventually(lambda: library.library.open_event_streams == 1)
    await _add_book(http, "b1")
    await _add_book(http, "b2")
    for response in watchers:
        events = await _events(response, 3)
        assert _ids(events)[:2] == [("book_added", "1"), ("book_added", "2")]
        assert events[2].event == "error"
        assert (events[2].data["status"], events[2].data["error"]["code"]) == (
            409,
            "shelf_changed",
        )
        assert await read_sse(response.content) is None  # and the stream ends
        response.close()


@pytest.mark.asyncio
async def test_a_quiet_shared_stream_carries_heartbeats_to_every_watcher(
    library: RunningLibrary,
) -> None:
    config = GatewayConfig(
        port=0, backend=library.address, services=LIBRARY_SERVICES, stream_heartbeat_s=0.2
    )
    async with (
        running_gateway(config) as gateway,
        aiohttp.ClientSession(base_url=gateway.base_url) as http,
    ):
        async with http.post("/v1/shelves", json={"id": "s1"}) as response:
            assert response.status == 200
        watchers = await _watch(http, 3)
        for response in watchers:
            await _events(response, 1)
        await _eventually(lambda: library.library.open_event_streams == 1)
        for response in watchers:
            comments: list[str] = []
            while len(comments) < 2:
                block = await read_sse(response.content, timeout_s=1.0)
                assert block is not None
                assert not block.data_lines
                comments += block.comments
            assert set(comments) == {"keepalive"}
        await _add_book(http, "b1")
        for response in watchers:
            event = await read_sse_event(response.content)
            assert (event.event, event.id) == ("book_added", "1")
            response.close()


@pytest.mark.asyncio
async def test_a_lone_subscriber_gets_backpressure_not_cut_off(
    gateway: RunningGateway, http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    _shares(gateway)._max_behind = 4
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", gateway.port))
    request = f"GET {EVENTS} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    try:
        await _eventually(lambda: len(_shares(gateway)) == 1)
        books = 80
        for number in range(1, books + 1):
            await _add_book(http, f"b{number}", "t" * 60_000)
        await asyncio.sleep(0.3)  # the shared stream reads on while it may
        (shared,) = _shares(gateway)
        (subscriber,) = shared.subscribers
        assert len(subscriber.queue) <= 4  # it waits for the client instead of queueing more
        received = bytearray()
        while received.count(b"event: book_added\n") < books:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 10.0)
            assert chunk, "the stream ended"
            received += chunk
        assert b"event: error" not in received
    finally:
        sock.close()


@pytest.mark.asyncio
async def test_a_request_with_its_own_deadline_keeps_its_own_call(
    http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    watchers = await _watch(http, 3, {"X-Request-Timeout": "30"})
    for response in watchers:
        await _events(response, 1)
    await asyncio.sleep(0.2)
    assert library.library.open_event_streams == 3
    for response in watchers:
        response.close()


def _subscribers(gateway: RunningGateway) -> list[Subscriber]:
    return [subscriber for shared in _shares(gateway) for subscriber in shared.subscribers]


async def _raw_events(response: aiohttp.ClientResponse, count: int) -> bytes:
    """The next `count` SSE blocks as received (the body, without chunk framing)."""
    received = b""
    for _ in range(count):
        received += await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5.0)
    return received


async def _shared_watch() -> tuple[list[bytes], int]:
    """What three watchers of one shared stream receive (a snapshot, five books), and
    how many of those events the shared stream wrote straight to their transports."""
    async with (
        serve_library() as library,
        running_gateway(_config(library)) as gateway,
        aiohttp.ClientSession(base_url=gateway.base_url) as http,
    ):
        async with http.post("/v1/shelves", json={"id": "s1", "theme": "t"}) as response:
            assert response.status == 200
        watchers = await _watch(http, 3)
        received = [await _raw_events(response, 1) for response in watchers]
        await _eventually(lambda: library.library.open_event_streams == 1)
        # Every handler waits with nothing queued: the events may go the direct way.
        await _eventually(lambda: [s.send is not None for s in _subscribers(gateway)] == [True] * 3)
        for number in range(1, 6):
            await _add_book(http, f"b{number}")
        received = [
            first + await _raw_events(response, 5)
            for first, response in zip(received, watchers, strict=True)
        ]
        sent = sum(subscriber.sent for subscriber in _subscribers(gateway))
        for response in watchers:
            response.close()
    return received, sent


def test_direct_writes_run_on_uvloop_and_send_what_asyncio_sends() -> None:
    # Sync: each run gets the loop it names (uvloop is the production default).
    with asyncio.Runner() as runner:
        on_asyncio, sent_on_asyncio = runner.run(_shared_watch())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        on_uvloop, sent_on_uvloop = runner.run(_shared_watch())
    assert sent_on_asyncio > 0
    assert sent_on_uvloop > 0
    assert on_uvloop == on_asyncio
    assert on_asyncio[0].count(b"event: book_added\n") == 5
    assert on_asyncio[1:] == on_asyncio[:1] * 2  # every watcher got the same bytes
