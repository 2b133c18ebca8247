"""One upstream stream shared by the watchers that would each have opened the same one.

Watchers of one streaming route with the same request (`last_event_id` aside),
the same forwarded headers (so the same `Authorization` and `X-Namespace`: a
share never crosses credentials) and the same framing would receive the same
messages after a given `event_id`: that is what resuming with `Last-Event-ID`
promises. So after its own first messages a watcher hands its position to the
route's `SharedStreams`:
- no shared stream for its key yet: its own call becomes the shared one, and it
  its first subscriber;
- a shared stream whose recent messages hold the watcher's last `event_id`
  (string equality): it subscribes, gets the messages after that one from the
  recent buffer, and cancels its own call;
- otherwise it keeps its own call and tries again after its next message.
Messages without an `event_id` are never a position to join at.

The shared stream reads each message once, renders it once, and appends the
same bytes to every subscriber's queue. A subscriber more than `max_behind`
messages behind is dropped (its handler ends it with an in-band error telling
the client to reconnect with `Last-Event-ID`), so one slow client neither
slows the others nor grows memory. A lone subscriber is never dropped: the
shared stream waits for it instead (backpressure through gRPC flow control,
as an unshared stream). The upstream's end or error reaches every subscriber;
the last subscriber leaving cancels the call at once. Heartbeats follow the
shared call's quiet intervals (no timer per subscriber).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Final

import grpc
from google.protobuf.message import Message

from gateway.errors.grpc_status import service_error
from gateway.stream_rpc import END, WAITING, UpstreamStream

# How many recent messages a shared stream keeps for joiners to find their position in.
RECENT_MESSAGES: Final = 64
# Messages a subscriber may have queued (not yet written) before it is dropped.
MAX_BEHIND: Final = 256
FELL_BEHIND_REASON: Final = "STREAM_FELL_BEHIND"

# Renders one upstream message as the bytes of one event, and its `event_id` ("" if none).
RenderEvent = Callable[[Message], tuple[bytes, str]]


class _Closed:
    """A subscriber's outcome when the gateway shuts down: a clean end."""


CLOSED: Final = _Closed()


def fell_behind_error(max_behind: int) -> grpc.aio.AioRpcError:
    return service_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"This stream fell more than {max_behind} events behind the others; "
        "reconnect with Last-Event-ID to resume",
        FELL_BEHIND_REASON,
    )


class Subscriber:
    """One watcher's queue of rendered events, and how its stream ends."""

    __slots__ = ("heartbeat", "outcome", "queue", "send", "sent", "waiter")

    def __init__(self) -> None:
        self.queue: deque[bytes] = deque()
        # While its handler waits with nothing queued: writes one HTTP chunk to the
        # client's transport at once if it has room (True), saving a task switch per event.
        self.send: Callable[[bytes], bool] | None = None
        self.sent = 0  # events written by `send`
        self.heartbeat = False  # the stream was quiet for a heartbeat interval: send one
        # END, CLOSED, or the exception every subscriber ends with; set once.
        self.outcome: object | None = None
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self) -> list[bytes]:
        """Everything queued, oldest first."""
        items = list(self.queue)
        self.queue.clear()
        return items


class SharedStream:
    """One upstream call read once for all its subscribers."""

    __slots__ = (
        "_closing",
        "_heartbeat_s",
        "_max_behind",
        "_on_done",
        "_recent",
        "_render",
        "_room",
        "_task",
        "_upstream",
        "subscribers",
    )

    def __init__(
        self,
        upstream: UpstreamStream,
        render: RenderEvent,
        last: tuple[str, bytes],
        heartbeat_s: float,
        closing: asyncio.Future[None],
        max_behind: int,
        on_done: Callable[[SharedStream], None],
    ) -> None:
        self._upstream = upstream
        self._render = render
        self._recent: deque[tuple[str, bytes]] = deque([last], maxlen=RECENT_MESSAGES)
        self._heartbeat_s = heartbeat_s
        self._closing = closing
        self._max_behind = max_behind
        self._on_done = on_done
        self._room: asyncio.Future[None] | None = None
        self.subscribers: set[Subscriber] = set()
        self._task = asyncio.get_running_loop().create_task(self._pump())

    def join(self, after_id: str) -> Subscriber | None:
        """A subscriber positioned after the message `after_id`; None when it is not recent."""
        if self._task.done():
            return None
        backlog: list[bytes] | None = None
        for event_id, data in self._recent:
            if event_id == after_id:
                if backlog is not None:
                    return None  # the ID names two positions: which one is unknowable
                backlog = []
            elif backlog is not None:
                backlog.append(data)
        if backlog is None:
            return None
        subscriber = Subscriber()
        subscriber.queue.extend(backlog)
        self.subscribers.add(subscriber)
        self._wake_pump()  # a pump waiting for a lone subscriber now has several
        return subscriber

    def leave(self, subscriber: Subscriber) -> None:
        if subscriber not in self.subscribers:
            return  # dropped, or the stream ended: nothing of it is left here
        self.subscribers.discard(subscriber)
        if not self.subscribers:
            self._stop()
        else:
            self._wake_pump()

    def written(self) -> None:
        """A subscriber's queue was written out: a pump waiting for room may read on."""
        self._wake_pump()

    def _wake_pump(self) -> None:
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)

    def _stop(self) -> None:
        """No subscriber is left: cancel the call at once and forget this stream."""
        self._upstream.cancel()
        self._task.cancel()
        self._on_done(self)

    async def _pump(self) -> None:
        outcome: object
        try:
            outcome = await self._read_all()
        except asyncio.CancelledError:
            return  # `_stop`: nobody is left to tell
        except grpc.aio.AioRpcError as error:  # the RPC failed: every subscriber's error
            outcome = error
        except Exception as error:  # a message the gateway cannot render: every stream ends
            self._upstream.cancel()
            outcome = error
        self._on_done(self)
        for subscriber in self.subscribers:
            subscriber.outcome = outcome
            subscriber.wake()
        self.subscribers.clear()

    async def _read_all(self) -> object:
        upstream = self._upstream
        closing = self._closing
        while True:
            await self._wait_for_a_lone_subscriber()
            item: Any = await upstream.next(self._heartbeat_s, closing)
            if item is END:
                return END
            if item is WAITING:
                if closing.done():
                    upstream.cancel()  # shutting down: end cleanly, clients reconnect
                    return CLOSED
                for subscriber in self.subscribers:
                    subscriber.heartbeat = True
                    subscriber.wake()
                continue
            data, event_id = self._render(item)
            self._recent.append((event_id, data))
            self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        crowded = len(self.subscribers) > 1
        dropped: list[Subscriber] = []
        chunk: bytes | None = None
        for subscriber in self.subscribers:
            queue = subscriber.queue
            send = subscriber.send
            if send is not None and not queue:
                if chunk is None:
                    chunk = b"%x\r\n%b\r\n" % (len(data), data)  # HTTP/1.1 chunked framing
                if send(chunk):
                    subscriber.sent += 1
                    continue
            if crowded and len(queue) >= self._max_behind:
                queue.clear()  # its memory goes now; the client resumes from what it got
                subscriber.outcome = fell_behind_error(self._max_behind)
                dropped.append(subscriber)
            else:
                queue.append(data)
            subscriber.wake()
        for subscriber in dropped:
            self.subscribers.discard(subscriber)

    async def _wait_for_a_lone_subscriber(self) -> None:
        """Backpressure for a stream with one subscriber, as if it were not shared."""
        while len(self.subscribers) == 1:
            (subscriber,) = self.subscribers
            if len(subscriber.queue) < self._max_behind:
                return
            self._room = asyncio.get_running_loop().create_future()
            try:
                await self._room
            finally:
                self._room = None


class SharedStreams:
    """A route's shared streams by key (request, forwarded headers, framing)."""

    __slots__ = ("_max_behind", "_streams")

    def __init__(self, max_behind: int = MAX_BEHIND) -> None:
        self._max_behind = max_behind
        self._streams: dict[bytes, SharedStream] = {}

    def __len__(self) -> int:
        return len(self._streams)

    def __iter__(self) -> Iterator[SharedStream]:
        return iter(list(self._streams.values()))

    def join(self, key: bytes, after_id: str) -> tuple[SharedStream, Subscriber] | None:
        """Subscribe to the key's shared stream after `after_id`, if it has that message."""
        shared = self._streams.get(key)
        if shared is None:
            return None
        subscriber = shared.join(after_id)
        return None if subscriber is None else (shared, subscriber)

    def has(self, key: bytes) -> bool:
        return key in self._streams

    def share(
        self,
        key: bytes,
        upstream: UpstreamStream,
        render: RenderEvent,
        last: tuple[str, bytes],
        heartbeat_s: float,
        closing: asyncio.Future[None],
    ) -> tuple[SharedStream, Subscriber]:
        """Make `upstream` (positioned just after `last`) the key's shared stream."""
        assert key not in self._streams
        shared = SharedStream(
            upstream, render, last, heartbeat_s, closing, self._max_behind, self._forget(key)
        )
        self._streams[key] = shared
        subscriber = Subscriber()
        shared.subscribers.add(subscriber)
        return shared, subscriber

    def _forget(self, key: bytes) -> Callable[[SharedStream], None]:
        def forget(shared: SharedStream) -> None:
            if self._streams.get(key) is shared:
                del self._streams[key]

        return forget
