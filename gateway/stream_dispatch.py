"""A server-streaming RPC served as Server-Sent Events or NDJSON (`stream_events`).

The request is mapped as a unary one's; the `Last-Event-ID` header fills the
request's `last_event_id` (a route whose request has none answers 400 to it:
such a stream cannot resume). The answer's status waits for the first message,
the call's status, or one heartbeat interval, whichever comes first: an error
before any event is a real HTTP error with the usual envelope (a 404 is a 404),
and a stream that is quiet at first still gets its headers before a proxy gives
up on it. From then on a failure is an in-band error event and the stream ends.

Per message: render, write, wait until the transport has room, and only then
read the next one (backpressure reaches the service through gRPC flow control).
A client that goes away cancels the handler (aiohttp's handler cancellation),
which cancels the RPC in gRPC core at once.

Watchers that would each read the same stream share one upstream call once
their own call has reached a position the shared one recently passed
(`stream_share`): the call is read and each message rendered once for all of
them. A request with its own `X-Request-Timeout` keeps its own call (its
deadline is its own).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

import grpc
from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpVersion11
from google.protobuf import message_factory
from google.protobuf.message import Message

from gateway.access_log import RequestRecord
from gateway.metrics import GatewayMetrics
from gateway.route_codec import compile_route_codec
from gateway.routing import Route, RouteMatch
from gateway.stream_events import (
    LAST_EVENT_ID_FIELD,
    LAST_EVENT_ID_HEADER,
    EventFraming,
    EventNaming,
    accepts_last_event_id,
    wants_event_stream,
)
from gateway.stream_limits import StreamRegistry, TooManyStreamsError, stream_key
from gateway.stream_rpc import END, WAITING, UpstreamStream
from gateway.stream_share import RenderEvent, SharedStream, SharedStreams, Subscriber
from gateway.unary_rpc import serialize
from gateway.upstream import (
    REQUEST_ID_HEADER,
    REQUEST_ID_METADATA,
    REQUEST_TIMEOUT_HEADER,
    InvalidRequestHeaderError,
    call_timeout,
    forwarded_metadata,
    read_body,
    refuse_repeated_headers,
)

# Renders an exception as the error response the middleware would send (its body
# is the envelope of an in-band error event): `middleware.error_response`.
FailureResponse = Callable[[BaseException, str], web.Response]

# A shared stream's event goes straight to a waiting client's transport while
# less than this is buffered there (aiohttp's own drain threshold).
DIRECT_WRITE_LIMIT: Final = 0x10000
# Longest Last-Event-ID accepted; the IDs a service hands out are far shorter.
MAX_LAST_EVENT_ID_LENGTH: Final = 256


@dataclass(frozen=True, slots=True)
class StreamSettings:
    timeout_s: float  # upstream deadline, and the most X-Request-Timeout may ask for
    heartbeat_s: float


class StreamingDispatcher:
    """A server-streaming RPC: one request message in, a stream of events out."""

    __slots__ = (
        "_call",
        "_failure",
        "_map",
        "_metrics",
        "_naming",
        "_reads_body",
        "_render",
        "_render_events",
        "_resumable",
        "_settings",
        "_shares",
        "_streams",
        "method",
    )

    def __init__(
        self,
        route: Route,
        channel: grpc.aio.Channel,
        settings: StreamSettings,
        streams: StreamRegistry,
        metrics: GatewayMetrics,
        failure: FailureResponse,
    ) -> None:
        self.method = route.grpc_method
        self._map, self._render, self._reads_body = compile_route_codec(route)
        self._naming = EventNaming.of(route.response)
        self._resumable = accepts_last_event_id(route.request)
        self._settings = settings
        self._streams = streams
        self._metrics = metrics
        self._failure = failure
        self._shares = SharedStreams()
        self._render_events = {
            sse: self._event_renderer(EventFraming(sse)) for sse in (False, True)
        }
        self._call = channel.unary_stream(
            route.grpc_method,
            request_serializer=serialize,
            response_deserializer=message_factory.GetMessageClass(route.response).FromString,
        )

    async def __call__(
        self, request: web.Request, match: RouteMatch, record: RequestRecord
    ) -> web.StreamResponse:
        _refuse_other_than_http_1_1(request)
        refuse_repeated_headers(request.headers)
        body = await read_body(request) if self._reads_body else b""
        headers = request.headers
        message = self._map(
            match.path_params, request.rel_url.query.items(), body, headers.get(hdrs.CONTENT_TYPE)
        )
        framing = EventFraming(wants_event_stream(headers.get(hdrs.ACCEPT)))
        metadata = forwarded_metadata(headers, record.request_id)
        share_key = self._share_key(request, framing, message, metadata)
        last_event_id = headers.get(LAST_EVENT_ID_HEADER)
        if last_event_id is not None:
            self._resume(message, last_event_id)
        timeout = call_timeout(
            headers.get(REQUEST_TIMEOUT_HEADER), self._settings.timeout_s, self._settings.timeout_s
        )
        key = stream_key(headers.get(hdrs.AUTHORIZATION))
        if not self._streams.acquire(key):
            raise TooManyStreamsError(self._streams.max_per_key)
        try:
            return await self._stream(
                request, framing, message, metadata, timeout, record, share_key
            )
        finally:
            self._streams.release(key)

    def _share_key(
        self,
        request: web.Request,
        framing: EventFraming,
        message: Message,
        metadata: tuple[tuple[str, str], ...],
    ) -> bytes | None:
        """Who may share an upstream call: the same request (before `Last-Event-ID` sets
        its position), the same forwarded headers (credentials, namespace) but the
        request ID, and the same framing. None: this stream keeps its own call."""
        if (
            not self._naming.has_event_id  # no positions to join at
            or request.method == "HEAD"
            or REQUEST_TIMEOUT_HEADER in request.headers
        ):
            return None
        forwarded = tuple(item for item in metadata if item[0] != REQUEST_ID_METADATA)
        position = ""
        if self._resumable:  # a query `last_event_id` is a position, not another stream
            position = getattr(message, LAST_EVENT_ID_FIELD)
            message.ClearField(LAST_EVENT_ID_FIELD)
        identity = repr((framing.sse, forwarded, message.SerializeToString(deterministic=True)))
        if position:
            setattr(message, LAST_EVENT_ID_FIELD, position)
        return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).digest()

    def _event_renderer(self, framing: EventFraming) -> RenderEvent:
        def render_event(item: Message) -> tuple[bytes, str]:
            naming = self._naming
            event_id = naming.event_id(item)
            return framing.event(naming.name(item), event_id, self._render(item)), event_id

        return render_event

    def _resume(self, message: Message, last_event_id: str) -> None:
        header = LAST_EVENT_ID_HEADER.lower()
        if not self._resumable:
            raise InvalidRequestHeaderError(
                header, f"{LAST_EVENT_ID_HEADER}: this stream cannot resume"
            )
        if len(last_event_id) > MAX_LAST_EVENT_ID_LENGTH or not last_event_id.isprintable():
            raise InvalidRequestHeaderError(
                header,
                f"{LAST_EVENT_ID_HEADER} must be printable text of at most "
                f"{MAX_LAST_EVENT_ID_LENGTH} characters",
            )
        # The header wins over a `last_event_id` query parameter: a reconnecting
        # EventSource repeats the original URL with a newer header.
        setattr(message, LAST_EVENT_ID_FIELD, last_event_id)

    async def _stream(
        self,
        request: web.Request,
        framing: EventFraming,
        message: Message,
        metadata: tuple[tuple[str, str], ...],
        timeout_s: float,
        record: RequestRecord,
        share_key: bytes | None,
    ) -> web.StreamResponse:
        started = time.perf_counter()
        upstream = UpstreamStream(self._call(message, timeout=timeout_s, metadata=metadata))
        closing = self._streams.closing
        heartbeat_s = self._settings.heartbeat_s
        record.events = 0
        code = grpc.StatusCode.CANCELLED  # unless the stream ends otherwise
        try:
            try:
                item = await upstream.next(heartbeat_s, closing)
            except grpc.aio.AioRpcError as error:
                code = error.code()
                raise  # before any event: the middleware answers the error's status
            response = _stream_response(framing, record.request_id)
            await response.prepare(request)
            self._metrics.streams_open += 1
            try:
                code = await self._relay(
                    request, response, framing, upstream, item, record, share_key
                )
            finally:
                self._metrics.streams_open -= 1
            return response
        except BaseException:
            # The client went away (CancelledError: the service sees it at once), or the
            # answer failed to start: no call may outlive its request.
            upstream.cancel()
            raise
        finally:
            record.grpc_code = code.name
            self._metrics.observe_stream(
                self.method, code.name, record.events, time.perf_counter() - started
            )

    async def _relay(
        self,
        request: web.Request,
        response: web.StreamResponse,
        framing: EventFraming,
        upstream: UpstreamStream,
        item: Any,
        record: RequestRecord,
        share_key: bytes | None,
    ) -> grpc.StatusCode:
        """Write events until the upstream ends; the status it ended with."""
        closing = self._streams.closing
        heartbeat_s = self._settings.heartbeat_s
        writer = request.writer
        if request.method == "HEAD":  # the headers are the whole answer
            upstream.cancel()
            await response.write_eof()
            return grpc.StatusCode.OK
        try:
            while True:
                if item is END:
                    break
                if item is WAITING:
                    if closing.done():
                        upstream.cancel()  # shutting down: end cleanly, clients reconnect
                        break
                    await response.write(framing.keepalive)
                else:
                    event, event_id = self._render_events[framing.sse](item)
                    await response.write(event)
                    record.events = (record.events or 0) + 1
                    await writer.drain()  # backpressure: the next read waits for room
                    if share_key is not None and event_id:
                        shared = self._share(share_key, framing, upstream, event_id, event)
                        if shared is not None:
                            return await self._follow(
                                response, writer, request.transport, framing, *shared, record
                            )
                    item = await upstream.next(heartbeat_s, closing)
                    continue
                await writer.drain()  # backpressure: the next read waits for room
                item = await upstream.next(heartbeat_s, closing)
            await response.write_eof()
            return grpc.StatusCode.OK
        except ConnectionError:  # the client went away while we wrote
            upstream.cancel()
            return grpc.StatusCode.CANCELLED
        except grpc.aio.AioRpcError as error:  # the RPC failed after the first event
            await self._end_with_error(response, framing, error, record)
            return error.code()
        except Exception as error:  # a message the gateway cannot render: the stream ends
            upstream.cancel()
            await self._end_with_error(response, framing, error, record)
            return grpc.StatusCode.INTERNAL

    def _share(
        self,
        key: bytes,
        framing: EventFraming,
        upstream: UpstreamStream,
        event_id: str,
        event: bytes,
    ) -> tuple[SharedStream, Subscriber] | None:
        """Join the key's shared stream after `event_id` (dropping our own call), or make
        our call the shared one when there is none; None: keep our own for now."""
        shares = self._shares
        joined = shares.join(key, event_id)
        if joined is not None:
            upstream.cancel()
            return joined
        if shares.has(key):
            return None  # not at a position it recently passed: try after the next message
        return shares.share(
            key,
            upstream.hand_over(),
            self._render_events[framing.sse],
            (event_id, event),
            self._settings.heartbeat_s,
            self._streams.closing,
        )

    async def _follow(
        self,
        response: web.StreamResponse,
        writer: AbstractStreamWriter,
        transport: asyncio.BaseTransport | None,
        framing: EventFraming,
        shared: SharedStream,
        subscriber: Subscriber,
        record: RequestRecord,
    ) -> grpc.StatusCode:
        """Write a shared stream's events to this client until it ends for this subscriber."""
        loop = asyncio.get_running_loop()
        send = _chunk_sender(transport)
        try:
            while True:
                if subscriber.queue:
                    events = subscriber.take()
                    await response.write(events[0] if len(events) == 1 else b"".join(events))
                    record.events = (record.events or 0) + len(events)
                    await writer.drain()
                    shared.written()
                    continue
                if subscriber.outcome is not None:
                    break
                if subscriber.heartbeat:
                    subscriber.heartbeat = False
                    await response.write(framing.keepalive)
                    await writer.drain()
                    continue
                waiter = subscriber.waiter = loop.create_future()
                subscriber.send = send
                try:
                    await waiter
                finally:
                    subscriber.waiter = None
                    subscriber.send = None
        except ConnectionError:  # the client went away while we wrote
            return grpc.StatusCode.CANCELLED
        finally:
            shared.leave(subscriber)
            record.events = (record.events or 0) + subscriber.sent
        outcome = subscriber.outcome
        if not isinstance(outcome, Exception):  # the end, or the gateway shutting down
            await response.write_eof()
            return grpc.StatusCode.OK
        await self._end_with_error(response, framing, outcome, record)
        if isinstance(outcome, grpc.aio.AioRpcError):
            return outcome.code()
        return grpc.StatusCode.INTERNAL

    async def _end_with_error(
        self,
        response: web.StreamResponse,
        framing: EventFraming,
        error: Exception,
        record: RequestRecord,
    ) -> None:
        """The in-band error event (the envelope the middleware would answer), then the end."""
        envelope = self._failure(error, record.request_id).body  # logs a 500's cause
        assert isinstance(envelope, bytes)
        try:
            await response.write(framing.error(envelope))
            await response.write_eof()
        except ConnectionError:
            pass  # the client left meanwhile: nothing more to tell it


def _refuse_other_than_http_1_1(request: web.Request) -> None:
    """A stream's length is unknown, so it is chunked, which aiohttp allows on HTTP/1.1
    only (`prepare` raises otherwise): refuse before the upstream call starts."""
    if request.version != HttpVersion11:
        version = f"HTTP/{request.version.major}.{request.version.minor}"
        raise InvalidRequestHeaderError(
            "http-version", f"This stream needs HTTP/1.1 (its events are chunked), not {version}"
        )


def _stream_response(framing: EventFraming, request_id: str) -> web.StreamResponse:
    response = web.StreamResponse(
        status=200,
        headers={
            hdrs.CONTENT_TYPE: framing.content_type,
            hdrs.CACHE_CONTROL: "no-store",
            hdrs.VARY: hdrs.ACCEPT,
            # nginx buffers proxied responses unless told not to; events must flow.
            "X-Accel-Buffering": "no",
            REQUEST_ID_HEADER: request_id,
        },
    )
    response.enable_chunked_encoding()
    return response


def _chunk_sender(transport: asyncio.BaseTransport | None) -> Callable[[bytes], bool] | None:
    """Writes a ready HTTP chunk straight to the transport while it has room (below
    aiohttp's drain threshold); False: the caller queues it for the handler's
    `write`/`drain` instead, which waits for room. A streaming response is always
    chunked (HTTP/1.1 only, no compression), so the chunk is what aiohttp would write.
    None: the transport cannot be written to so (the handler writes every event)."""
    writable = _writable(transport)
    if writable is None:
        return None

    def send(chunk: bytes) -> bool:
        if writable.is_closing() or writable.get_write_buffer_size() > DIRECT_WRITE_LIMIT:
            return False
        writable.write(chunk)
        return True

    return send


def _writable(transport: asyncio.BaseTransport | None) -> asyncio.WriteTransport | None:
    # By behaviour, not class: uvloop's transports (the default loop in production)
    # are only alike asyncio's, not subclasses.
    if all(
        callable(getattr(transport, name, None))
        for name in ("write", "is_closing", "get_write_buffer_size")
    ):
        return cast(asyncio.WriteTransport, transport)
    return None
