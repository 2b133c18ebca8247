"""The servicer context of an in-process call: what grpc.aio's gives a unary handler.

The service's handlers read the call's metadata, its remaining time and peer,
set trailing metadata, and end a call with `abort`, whose status, details and
trailing metadata (including `grpc-status-details-bin`) become the caller's
error exactly as over the network. As in grpc.aio, `abort` raises
`grpc.aio.AbortError` and may be called once; empty details or trailing
metadata given to it keep what was set before. Nothing is compressed
in-process, so the compression settings do nothing; `read` (client streaming)
refuses, and `write` refuses unless the context was given a `sink` (a
server-streaming call), which then takes each message in turn.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NoReturn

import grpc

_log = logging.getLogger(__name__)

DoneCallback = Any  # grpc-stubs' private `_DoneCallback[...]`
Pairs = tuple[tuple[str, Any], ...]


class InProcessContext(grpc.aio.ServicerContext[Any, Any]):
    """One call's server side: metadata in, status and metadata out, deadline."""

    def __init__(
        self,
        invocation_metadata: Pairs,
        deadline: float | None,
        peer: str,
        sink: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        self._sink = sink  # where a server-streaming call's messages go
        self._invocation_metadata = invocation_metadata
        self._deadline = deadline  # on the event loop's clock; None: no deadline
        self._peer = peer
        self._code = grpc.StatusCode.OK
        self._details = ""
        # Kept as (key, value) pairs, as grpc.aio's own context does: a `grpc.aio.Metadata`
        # is built only where one is handed out (a failure, a call's metadata).
        self._initial_metadata: Pairs = ()
        self._trailing_metadata: Pairs = ()
        self._callbacks: list[DoneCallback] = []
        self._cancelled = False
        self._done = False
        self.aborted = False

    # What the handlers read.
    def invocation_metadata(self) -> Pairs:  # type: ignore[override]  # as grpc.aio's, a tuple
        return self._invocation_metadata

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> float:
        if self._deadline is None:
            return math.inf
        return max(self._deadline - asyncio.get_running_loop().time(), 0.0)

    def peer_identities(self) -> Iterable[bytes] | None:
        return None  # no transport security in-process

    def peer_identity_key(self) -> str | None:
        return None

    def auth_context(self) -> Mapping[str, Iterable[bytes]]:
        return {}

    # What the handlers set.
    def set_trailing_metadata(self, trailing_metadata: Iterable[tuple[str, Any]]) -> None:
        self._trailing_metadata = tuple(trailing_metadata)

    async def send_initial_metadata(self, initial_metadata: Iterable[tuple[str, Any]]) -> None:
        self._initial_metadata = tuple(initial_metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def set_compression(self, compression: grpc.Compression) -> None:
        pass  # nothing crosses a wire

    def disable_next_message_compression(self) -> None:
        pass

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Iterable[tuple[str, Any]] = (),
    ) -> NoReturn:
        if self.aborted:
            raise grpc.aio.UsageError("Abort already called!")
        self.aborted = True
        trailing = tuple(trailing_metadata)
        if trailing:
            self._trailing_metadata = trailing
        if details:
            self._details = details
        if code == grpc.StatusCode.OK:  # as grpc.aio: aborting with OK is an error
            _log.error("abort() called with StatusCode.OK; answering UNKNOWN")
            code = grpc.StatusCode.UNKNOWN
        self._code = code
        raise grpc.aio.AbortError("Locally aborted.")

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        await self.abort(status.code, status.details, status.trailing_metadata)

    # Streaming only.
    async def read(self) -> NoReturn:
        raise grpc.aio.UsageError("read() is for streaming requests; this call is unary")

    async def write(self, message: Any) -> None:
        if self._sink is None:
            raise grpc.aio.UsageError("write() is for streaming responses; this call is unary")
        if self._done:
            raise grpc.aio.UsageError("write() after the call ended")
        await self._sink(message)

    # The outcome, read by the channel when the handler has returned or raised.
    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> grpc.aio.Metadata:
        return grpc.aio.Metadata.from_tuple(self._initial_metadata)

    def trailing_metadata(self) -> grpc.aio.Metadata:
        return grpc.aio.Metadata.from_tuple(self._trailing_metadata)

    def metadata_pairs(self) -> tuple[Pairs, Pairs]:
        """The initial and trailing metadata as pairs (no `grpc.aio.Metadata` built)."""
        return self._initial_metadata, self._trailing_metadata

    def add_done_callback(self, callback: DoneCallback) -> None:
        self._callbacks.append(callback)

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def finish(self, *, cancelled: bool) -> None:
        """Mark the call over (cancelled: by its caller or its deadline) and run the callbacks."""
        self._cancelled = cancelled
        self._done = True
        for callback in self._callbacks:
            try:
                callback(self)
            except Exception:  # as grpc.aio: a failing callback only gets logged
                _log.exception("done callback of an in-process call failed")
