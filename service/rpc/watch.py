"""ExecutionService.WatchExecution: a snapshot, the execution's logged events, the end.

The stream is driven by the store's event log, not by messages pushed into
it: a watcher remembers the last position it sent, sleeps until the process's
watch hub says its execution changed (or the keepalive interval passes), and
reads what follows its position, at most `_BATCH` events at a time. A reader
slower than the writer therefore costs nothing but its position (gRPC's flow
control holds the one message being written); if it falls so far behind that
the log dropped events it has not seen, it gets a fresh snapshot instead,
marked `reset_reason: expired`.

Events are sent as stored bytes: the log keeps each `ExecutionEvent`
without its `event_id`, and the ID (the log's sequence number) is prepended
as field 1, so nothing is parsed but the small payload's kind.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import grpc
from execgate.retrievers.v1 import execution_events_pb2 as events_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2

from service import ids
from service.auth import Authenticator
from service.errors import InvalidArgumentError, NotFoundError, StreamInterruptedError
from service.executions.events import TERMINAL_EVENTS
from service.executions.records import TERMINAL
from service.retrievers import RetrieverDirectory
from service.rpc.call import CallMetadata
from service.rpc.reads import invalid_execution_id
from service.rpc.wire import embedded
from service.store.protocol import ExecutionRow, Store
from service.watch.hub import Watch, WatchHub

Context = grpc.aio.ServicerContext[Any, Any]
Event = events_pb2.ExecutionEvent

MAX_LAST_EVENT_ID = 20  # a decimal int64 has at most 19 digits
_BATCH = 100
_EVENT_ID = Event.EVENT_ID_FIELD_NUMBER
_SNAPSHOT = Event.SNAPSHOT_FIELD_NUMBER
_HEARTBEAT = Event.HEARTBEAT_FIELD_NUMBER
_TERMINAL_FIELDS = {
    "completed": Event.COMPLETED_FIELD_NUMBER,
    "failed": Event.FAILED_FIELD_NUMBER,
}
_SNAPSHOT_EXECUTION = events_pb2.ExecutionSnapshot.EXECUTION_FIELD_NUMBER
_SNAPSHOT_RESET = events_pb2.ExecutionSnapshot.RESET_REASON_FIELD_NUMBER

DEFAULT_KEEPALIVE_SECONDS = 15.0
DEFAULT_MAX_STREAM_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class WatchSettings:
    # A `heartbeat` event after this long without one (0: none).
    keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS
    # A stream is ended (UNAVAILABLE, resumable) after this long (0: no limit).
    max_stream_seconds: float = DEFAULT_MAX_STREAM_SECONDS


@dataclass(slots=True)
class _Stream:
    """What one call knows: whose execution, and how far it has sent."""

    namespace_id: str
    retriever_id: str
    execution_id: str
    watch: Watch

    @property
    def position(self) -> int:
        return self.watch.position


class ExecutionWatcher:
    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        retrievers: RetrieverDirectory,
        hub: WatchHub,
        settings: WatchSettings,
    ) -> None:
        self._store = store
        self._authenticator = authenticator
        self._retrievers = retrievers
        self._hub = hub
        self._settings = settings

    async def watch_execution(
        self, request: service_pb2.WatchExecutionRequest, metadata: CallMetadata, context: Context
    ) -> None:
        caller = await self._authenticator.caller(
            metadata.authorization, metadata.namespace, "read"
        )
        execution_id = request.execution_id
        if not ids.is_execution_id(execution_id):
            raise invalid_execution_id()
        resume_from = _resume_position(request.last_event_id)
        retriever = await self._retrievers.resolve(caller.namespace_id, request.retriever_id)
        # Registered before the first read, so no change after it goes unnoticed.
        with self._hub.watch(execution_id) as watch:
            stream = _Stream(caller.namespace_id, retriever.id, execution_id, watch)
            row = await self._row(stream)
            context.set_trailing_metadata((("cache-control", "no-store"),))
            if resume_from is None:
                await self._snapshot(context, stream, row, "")
            elif not 0 <= resume_from <= row.event_seq:
                await self._snapshot(context, stream, row, "unknown_event_id")
            else:
                watch.position = resume_from
            if row.status in TERMINAL and watch.position == row.event_seq:
                return  # everything up to the end is with the client
            await self._follow(context, stream)

    async def _follow(self, context: Context, stream: _Stream) -> None:
        """Send logged events until the terminal one; sleep while there are none."""
        loop = asyncio.get_running_loop()
        settings = self._settings
        limit = settings.max_stream_seconds
        deadline = loop.time() + limit if limit > 0 else None
        keepalive = settings.keepalive_seconds or None
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    if stream.watch.closing:
                        raise StreamInterruptedError(
                            "The server is shutting down",
                            reason="SERVER_SHUTTING_DOWN",
                            last_event_id=str(stream.position),
                        )
                    batch = await self._store.read_events(
                        stream.execution_id, stream.position, _BATCH
                    )
                    if batch and batch[0].seq != stream.position + 1:
                        # The log no longer has what this watcher missed.
                        row = await self._row(stream)
                        await self._snapshot(context, stream, row, "expired")
                        if row.status in TERMINAL:
                            return
                        continue
                    for event in batch:
                        if await self._send_logged(context, stream, event.seq, event.payload):
                            return
                    if len(batch) == _BATCH:
                        continue
                    woken = await stream.watch.wait(keepalive or 3600.0)
                    if not woken and keepalive is not None:
                        await context.write(_event(stream.position, _HEARTBEAT, b""))
        except TimeoutError:
            raise StreamInterruptedError(
                f"The stream reached its maximum duration of {limit:g} s",
                reason="STREAM_DURATION_LIMIT",
                last_event_id=str(stream.position),
            ) from None

    async def _send_logged(
        self, context: Context, stream: _Stream, seq: int, payload: bytes
    ) -> bool:
        """Send one logged event; True when it was the terminal one."""
        kind = Event.FromString(payload).WhichOneof("event")
        if kind in TERMINAL_EVENTS:
            # Logged as a marker; the final detail is the (now immutable) row.
            row = await self._row(stream)
            await context.write(_event(seq, _TERMINAL_FIELDS[str(kind)], row.detail))
            stream.watch.position = seq
            return True
        await context.write(embedded(_EVENT_ID, str(seq).encode()) + payload)
        stream.watch.position = seq
        return False

    async def _snapshot(
        self, context: Context, stream: _Stream, row: ExecutionRow, reset_reason: str
    ) -> None:
        snapshot = embedded(_SNAPSHOT_EXECUTION, row.detail)
        if reset_reason:
            snapshot += embedded(_SNAPSHOT_RESET, reset_reason.encode())
        await context.write(_event(row.event_seq, _SNAPSHOT, snapshot))
        stream.watch.position = row.event_seq

    async def _row(self, stream: _Stream) -> ExecutionRow:
        row = await self._store.get_execution(
            stream.namespace_id, stream.retriever_id, stream.execution_id
        )
        if row is None:
            raise NotFoundError("execution", stream.execution_id)
        return row


def _event(event_id: int, field: int, body: bytes) -> bytes:
    return embedded(_EVENT_ID, str(event_id).encode()) + embedded(field, body)


def _resume_position(last_event_id: str) -> int | None:
    """None for a first connect; -1 for an ID that cannot be a position (reset)."""
    if not last_event_id:
        return None
    if len(last_event_id) > MAX_LAST_EVENT_ID:
        raise InvalidArgumentError(
            "last_event_id", f"last_event_id must be at most {MAX_LAST_EVENT_ID} characters"
        )
    if not last_event_id.isascii() or not last_event_id.isdigit():
        return -1
    return int(last_event_id)
