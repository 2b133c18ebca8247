"""Server-streaming RPCs through the gateway as SSE and NDJSON, with no gateway code for them.

The backend is the test-only library (`WatchShelfEvents`: a snapshot, then one
event per book, resumable; `WatchShelf`: bare books, no oneof, no IDs), on
127.0.0.1 port 0; the client is aiohttp or a raw socket.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from gateway.access_log import AccessLog
from gateway.app import LIFECYCLE, ROUTES
from gateway.config import GatewayConfig
from gateway.stream_dispatch import StreamingDispatcher
from gateway.transcode.exceptions import RenderError
from tests.support.gateway_harness import (
    LIBRARY_SERVICES,
    RunningGateway,
    raw_request,
    running_gateway,
)
from tests.support.library_servicer import RunningLibrary, serve_library
from tests.support.stream_client import read_ndjson, read_sse, read_sse_event

SSE = {"Accept": "text/event-stream"}
EVENTS = "/v1/shelves/s1/events:watch"


@pytest_asyncio.fixture
async def library() -> AsyncIterator[RunningLibrary]:
    async with serve_library() as running:
        yield running


def _config(library: RunningLibrary, **changes: Any) -> GatewayConfig:
    base = GatewayConfig(
        port=0,
        backend=library.address,
        services=LIBRARY_SERVICES,
        shutdown_timeout_s=2.0,
        stream_heartbeat_s=5.0,
    )
    return replace(base, **changes)


@pytest_asyncio.fixture
async def gateway(library: RunningLibrary) -> AsyncIterator[RunningGateway]:
    async with running_gateway(_config(library)) as running:
        yield running


@pytest_asyncio.fixture
async def http(gateway: RunningGateway) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=gateway.base_url) as session:
        yield session


async def _add_book(http: aiohttp.ClientSession, book_id: str, shelf: str = "s1") -> Any:
    book = {"id": book_id, "title": f"Title {book_id}", "pages": 100}
    async with http.post(f"/v1/shelves/{shelf}/books", json=book) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _shelf(http: aiohttp.ClientSession, shelf: str = "s1") -> Any:
    async with http.post("/v1/shelves", json={"id": shelf, "theme": "t"}) as response:
        assert response.status == 200
    async with http.get(f"/v1/shelves/{shelf}") as response:
        return await response.json()


async def _eventually(check: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_sse_snapshot_then_changes_rendered_like_unary(http: aiohttp.ClientSession) -> None:
    shelf = await _shelf(http)
    async with http.get(EVENTS, headers=SSE) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Request-Id"]
        snapshot = await read_sse_event(response.content)
        assert (snapshot.event, snapshot.id) == ("snapshot", "0")
        # The data is the whole message, by the unary rules: every field, unset oneof members null.
        assert snapshot.data == {"event_id": "0", "snapshot": shelf, "book_added": None}
        created = await _add_book(http, "b1")
        added = await read_sse_event(response.content)
        assert (added.event, added.id) == ("book_added", "1")
        assert added.data["book_added"] == created  # the same JSON as the unary answer


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "accept", [None, "*/*", "application/x-ndjson", "application/json", "text/event-stream;q=0"]
)
async def test_ndjson_is_the_default_framing(
    http: aiohttp.ClientSession, accept: str | None
) -> None:
    await _shelf(http)
    headers = {} if accept is None else {"Accept": accept}
    async with http.get(EVENTS, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/x-ndjson"
        first = await read_ndjson(response.content)
        assert first["result"]["event_id"] == "0"
        assert first["result"]["snapshot"]["id"] == "s1"
        created = await _add_book(http, "b1")
        assert await read_ndjson(response.content) == {
            "result": {"event_id": "1", "snapshot": None, "book_added": created}
        }


@pytest.mark.asyncio
async def test_a_message_without_oneof_or_id_is_named_by_its_type(
    http: aiohttp.ClientSession,
) -> None:
    await _shelf(http)
    created = await _add_book(http, "b1")
    async with http.get("/v1/shelves/s1:watch", headers=SSE) as response:
        event = await read_sse_event(response.content)
    assert (event.event, event.id) == ("Book", None)
    assert event.data == created


@pytest.mark.asyncio
async def test_last_event_id_resumes_without_loss_or_duplicates(
    http: aiohttp.ClientSession,
) -> None:
    await _shelf(http)
    for book_id in ("b1", "b2", "b3"):
        await _add_book(http, book_id)
    # A query parameter is overridden by the header (a reconnecting EventSource keeps its URL).
    url = EVENTS + "?last_event_id=0"
    async with http.get(url, headers={**SSE, "Last-Event-ID": "1"}) as response:
        assert response.status == 200
        seen = [await read_sse_event(response.content) for _ in range(2)]
        await _add_book(http, "b4")
        seen.append(await read_sse_event(response.content))
    assert [(e.event, e.id) for e in seen] == [("book_added", str(i)) for i in (2, 3, 4)]
    assert [e.data["book_added"]["id"] for e in seen] == ["b2", "b3", "b4"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "last_event_id", "status", "code"),
    [
        # The request of WatchShelf has no `last_event_id`: it cannot resume.
        ("/v1/shelves/s1:watch", "3", 400, "invalid_header"),
        (EVENTS, "x" * 300, 400, "invalid_header"),
        (EVENTS, "99", 400, "unknown_event_id"),  # the service's INVALID_ARGUMENT, before events
    ],
)
async def test_unusable_last_event_id_is_a_real_400(
    http: aiohttp.ClientSession, path: str, last_event_id: str, status: int, code: str
) -> None:
    await _shelf(http)
    async with http.get(path, headers={**SSE, "Last-Event-ID": last_event_id}) as response:
        assert response.status == status
        assert response.headers["Content-Type"].startswith("application/json")
        body = await response.json()
    assert (body["status"], body["error"]["code"]) == (status, code)


@pytest.mark.asyncio
@pytest.mark.parametrize("accept", ["text/event-stream", "application/x-ndjson"])
async def test_an_error_before_any_event_is_a_real_status(
    http: aiohttp.ClientSession, accept: str
) -> None:
    async with http.get("/v1/shelves/nope/events:watch", headers={"Accept": accept}) as response:
        assert response.status == 404
        assert response.headers["X-Request-Id"]
        body = await response.json()
    assert body["error"]["code"] == "shelf_not_found"
    assert body["success"] is False


@pytest.mark.asyncio
async def test_an_error_after_the_first_event_is_an_error_event(
    http: aiohttp.ClientSession,
) -> None:
    await _shelf(http)
    async with http.get(EVENTS, params={"fail_after": "1"}, headers=SSE) as response:
        assert response.status == 200
        assert (await read_sse_event(response.content)).event == "snapshot"
        error = await read_sse_event(response.content)
        assert error.id is None
        assert await read_sse(response.content) is None  # and the stream ends
    assert error.event == "error"
    assert error.data["status"] == 409  # ABORTED, by the one table
    assert error.data["error"]["code"] == "shelf_changed"
    assert error.data["success"] is False

    async with http.get(EVENTS, params={"fail_after": "1"}) as response:
        assert "result" in await read_ndjson(response.content)
        line = await read_ndjson(response.content)
        assert await read_ndjson(response.content) is None
    assert line["error"]["status"] == 409
    assert line["error"]["error"]["code"] == "shelf_changed"


@pytest.mark.asyncio
@pytest.mark.parametrize("accept", ["text/event-stream", "application/x-ndjson"])
async def test_client_disconnect_cancels_the_upstream_call_within_a_second(
    http: aiohttp.ClientSession, library: RunningLibrary, accept: str
) -> None:
    await _shelf(http)
    response = await http.get(EVENTS, headers={"Accept": accept})
    await response.content.readline()  # the snapshot arrived: the call is open upstream
    assert library.library.open_event_streams == 1
    loop = asyncio.get_running_loop()
    closed_at = loop.time()
    response.close()  # drops the connection
    await _eventually(lambda: library.library.event_stream_ends, timeout_s=2.0)
    assert library.library.event_stream_ends[0] - closed_at < 1.0
    assert library.library.open_event_streams == 0


@pytest.mark.asyncio
async def test_a_message_that_cannot_be_rendered_ends_the_stream_with_a_500_event(
    gateway: RunningGateway, http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    await _shelf(http)
    (route,) = [r for r in gateway.app[ROUTES].routes if r.template.source.endswith("events:watch")]
    dispatcher = gateway.app[LIFECYCLE].dispatchers[route]
    assert isinstance(dispatcher, StreamingDispatcher)
    render = dispatcher._render

    def fail_on_books(message: Any) -> bytes:
        if message.HasField("book_added"):
            raise RenderError("timestamp out of range")
        return render(message)

    dispatcher._render = fail_on_books
    async with http.get(EVENTS, headers=SSE) as response:
        assert (await read_sse_event(response.content)).event == "snapshot"
        await _add_book(http, "b1")
        error = await read_sse_event(response.content)
        assert await read_sse(response.content) is None
    assert error.event == "error"
    assert error.data["status"] == 500
    assert "timestamp" not in str(error.data)  # the cause stays in the gateway's log
    await _eventually(lambda: library.library.open_event_streams == 0)


@pytest.mark.asyncio
async def test_a_reader_that_does_not_read_stops_the_upstream(
    gateway: RunningGateway, http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    """Backpressure: the gateway reads the next message only once the last one is written,
    so a client that reads nothing stops the service (gRPC flow control) instead of making
    the gateway hold what the service produces."""
    await _shelf(http)
    total = 30_000  # ~1 KB each: 30 MB if anything buffered it all
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", gateway.port))
    request = f"GET {EVENTS}?burst={total} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    try:
        await _eventually(lambda: library.library.events_yielded > 0)
        # Let the pipeline fill up, then check it stopped well short of the total.
        previous = -1
        while library.library.events_yielded != previous:
            previous = library.library.events_yielded
            await asyncio.sleep(0.5)
        assert library.library.events_yielded < total // 2
        # Nothing was lost: reading now delivers every padding event, then the snapshot.
        received = bytearray()
        while b"event: snapshot" not in received[-(1 << 17) :]:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 10.0)
            assert chunk
            received += chunk
        assert received.count(b"event: book_added\n") == total
    finally:
        sock.close()


@pytest.mark.asyncio
async def test_concurrent_streams_are_limited_per_api_key(library: RunningLibrary) -> None:
    config = _config(library, max_streams_per_key=2, retry_after_s=3)
    async with (
        running_gateway(config) as gateway,
        aiohttp.ClientSession(base_url=gateway.base_url) as http,
    ):
        await _shelf(http)
        first_key = {**SSE, "Authorization": "Bearer first"}
        opened = [await http.get(EVENTS, headers=first_key) for _ in range(2)]
        for response in opened:
            assert response.status == 200
            await read_sse_event(response.content)
        async with http.get(EVENTS, headers=first_key) as refused:
            assert refused.status == 429
            assert refused.headers["Retry-After"] == "3"
            body = await refused.json()
        assert body["error"]["code"] == "too_many_streams"
        assert body["error"]["details"] == {"limit": 2}
        other_key = {**SSE, "Authorization": "Bearer second"}
        for _ in range(3):  # a stream refused before its first event gives its slot back
            async with http.get("/v1/shelves/nope/events:watch", headers=other_key) as missing:
                assert missing.status == 404
        async with http.get(EVENTS, headers=other_key) as response:
            assert response.status == 200
        opened[0].close()  # a slot of the first key frees up once its stream ends
        await _eventually(lambda: library.library.open_event_streams == 1)
        async with http.get(EVENTS, headers=first_key) as response:
            assert response.status == 200
        opened[1].close()


@pytest.mark.asyncio
async def test_quiet_stream_gets_headers_and_heartbeats(library: RunningLibrary) -> None:
    # The unary default deadline (0.3 s) does not cut a stream: streams have their own.
    config = _config(library, stream_heartbeat_s=0.2, default_timeout_s=0.3)
    async with (
        running_gateway(config) as gateway,
        aiohttp.ClientSession(base_url=gateway.base_url) as http,
    ):
        await _shelf(http)
        # WatchShelf on an empty shelf sends nothing: the headers still come after one interval.
        async with http.get("/v1/shelves/s1:watch", headers=SSE) as response:
            assert response.status == 200
            started = time.monotonic()
            comments = []
            while time.monotonic() - started < 1.0:
                block = await read_sse(response.content, timeout_s=1.0)
                assert block is not None
                assert not block.data_lines
                comments += block.comments
            assert len(comments) >= 3
            assert set(comments) == {"keepalive"}
            created = await _add_book(http, "b1")
            assert (await read_sse_event(response.content)).data == created
        async with http.get("/v1/shelves/s1:watch", params={"max_events": "5"}) as response:
            await read_ndjson(response.content)  # the book
            assert await asyncio.wait_for(response.content.readline(), 1.0) == b"\n"


@pytest.mark.asyncio
async def test_the_client_deadline_ends_a_stream_with_an_error_event(
    http: aiohttp.ClientSession,
) -> None:
    await _shelf(http)
    async with http.get(EVENTS, headers={**SSE, "X-Request-Timeout": "0.3"}) as response:
        assert (await read_sse_event(response.content)).event == "snapshot"
        error = await read_sse_event(response.content)
    assert error.event == "error"
    assert (error.data["status"], error.data["error"]["code"]) == (504, "deadline_exceeded")


@pytest.mark.asyncio
async def test_one_access_line_per_stream_with_its_events_and_metrics(
    library: RunningLibrary,
) -> None:
    log = io.BytesIO()
    async with (
        running_gateway(_config(library), AccessLog(log)) as gateway,
        aiohttp.ClientSession(base_url=gateway.base_url) as http,
    ):
        await _shelf(http)
        secret = {**SSE, "Authorization": "Bearer secret-key-123"}
        async with http.get(EVENTS, params={"fail_after": "2"}, headers=secret) as response:
            await read_sse_event(response.content)
            await _add_book(http, "b1")
            while await read_sse(response.content) is not None:
                pass
        await asyncio.sleep(0.05)  # the line is written in the next loop iteration
        lines = [orjson.loads(line) for line in log.getvalue().splitlines()]
        (stream_line,) = [line for line in lines if line["route"].endswith("events:watch")]
        assert stream_line["events"] == 2
        assert stream_line["status"] == 200
        assert stream_line["grpc_code"] == "ABORTED"
        assert "secret-key-123" not in log.getvalue().decode()
        async with http.get("/metrics") as response:
            metrics = await response.text()
    method = "/execgate.testing.v1.ShelfWatchService/WatchShelfEvents"
    assert f'execgate_gateway_streams_total{{grpc_code="ABORTED",grpc_method="{method}"}} 1.0' in (
        metrics
    )
    assert f'execgate_gateway_stream_events_total{{grpc_method="{method}"}} 2.0' in metrics
    assert "execgate_gateway_streams_open 0.0" in metrics


@pytest.mark.asyncio
async def test_shutdown_ends_open_streams_cleanly(library: RunningLibrary) -> None:
    config = _config(library, shutdown_timeout_s=10.0)
    async with aiohttp.ClientSession() as http:
        async with running_gateway(config) as gateway:
            await _shelf_at(http, gateway)
            response = await http.get(f"{gateway.base_url}{EVENTS}", headers=SSE)
            await read_sse_event(response.content)
            started = time.monotonic()
        # The gateway stopped well before its shutdown timeout; the stream ended with EOF.
        assert time.monotonic() - started < 2.0
        assert await read_sse(response.content) is None
        response.close()
    await _eventually(lambda: library.library.open_event_streams == 0)


async def _shelf_at(http: aiohttp.ClientSession, gateway: RunningGateway) -> None:
    async with http.post(f"{gateway.base_url}/v1/shelves", json={"id": "s1"}) as response:
        assert response.status == 200


@pytest.mark.asyncio
async def test_head_answers_the_headers_only(http: aiohttp.ClientSession) -> None:
    await _shelf(http)
    async with http.head(EVENTS, headers=SSE) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert await response.read() == b""
    async with http.head("/v1/shelves/nope/events:watch") as response:
        assert response.status == 404


@pytest.mark.asyncio
async def test_open_streams_do_not_count_against_the_in_flight_bound(
    library: RunningLibrary,
) -> None:
    # Streams have their own bound (per key); a bound of 1 in flight still serves requests.
    async with (
        running_gateway(_config(library, max_in_flight=1)) as gateway,
        aiohttp.ClientSession(base_url=gateway.base_url) as http,
    ):
        await _shelf(http)
        async with http.get(EVENTS, headers=SSE) as first, http.get(EVENTS, headers=SSE) as second:
            assert (first.status, second.status) == (200, 200)
            await read_sse_event(first.content)
            await read_sse_event(second.content)
            async with http.get("/v1/shelves/s1") as unary:
                assert unary.status == 200


@pytest.mark.asyncio
async def test_http_1_0_is_refused_before_the_upstream_call(
    gateway: RunningGateway, http: aiohttp.ClientSession, library: RunningLibrary
) -> None:
    # A stream is chunked, which HTTP/1.0 cannot carry: refused with the envelope,
    # and no upstream call is started for it (none stays open).
    await _shelf(http)
    request = f"GET {EVENTS} HTTP/1.0\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n"
    response = await raw_request(gateway.port, request.encode())
    assert response.status == 400
    assert response.headers["x-request-id"]
    error = response.json()
    assert (error["status"], error["error"]["code"]) == (400, "invalid_header")
    assert error["error"]["type"] == "BadRequestError"
    assert "HTTP/1.1" in error["error"]["message"]
    # A started call would show here already: the gateway answers after its first message.
    assert library.library.open_event_streams == 0
    assert library.library.event_stream_ends == []


@pytest.mark.asyncio
@pytest.mark.parametrize("header", ["Authorization", "X-Request-Timeout"])
async def test_a_repeated_single_valued_header_is_a_400_as_on_unary_routes(
    http: aiohttp.ClientSession, library: RunningLibrary, header: str
) -> None:
    await _shelf(http)
    value = "Bearer k" if header == "Authorization" else "30"
    headers = [("Accept", "text/event-stream"), (header, value), (header, value)]
    async with http.get(EVENTS, headers=headers) as response:
        assert response.status == 400
        body = await response.json()
    assert body["error"]["code"] == "invalid_header"
    assert body["error"]["details"] == {"header": header.lower()}
    assert library.library.open_event_streams == 0
