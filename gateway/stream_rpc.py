"""One server-streaming RPC read message by message, with waits that never cancel a read.

Each read runs in a task of its own that the caller only waits on (with a
timeout, for heartbeats, and beside the shutdown signal): cancelling the task
that awaits a grpc.aio read in flight cancels the whole call from inside
grpc.aio and leaks what it had received (see `unary_rpc`'s module doc). When
the HTTP client goes away, `cancel` cancels the RPC in gRPC core (the service
sees it at once) and the pending read ends by itself.

A read starts only when the previous message has been written to the client,
so a slow reader stops the upstream through gRPC flow control instead of
filling the gateway's memory.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import grpc
from google.protobuf.message import Message

from gateway.unary_rpc import cancel_rpc


class _Waiting:
    """Returned by `next` when nothing arrived in time (send a heartbeat)."""


WAITING: Final = _Waiting()
END: Final = grpc.aio.EOF


class UpstreamStream:
    """Reads one unary-stream call; `next` raises `grpc.aio.AioRpcError` for a non-OK end."""

    __slots__ = ("_call", "_handed_over", "_pending")

    def __init__(self, call: grpc.aio.UnaryStreamCall[Any, Any]) -> None:
        self._call = call
        self._pending: asyncio.Task[Any] | None = None
        self._handed_over = False

    async def next(self, wait_s: float, closing: asyncio.Future[None]) -> Message | Any:
        """The next message, `END`, or `WAITING` after `wait_s` or once `closing` is done."""
        pending = self._pending
        if pending is None:
            pending = self._pending = asyncio.get_running_loop().create_task(self._call.read())
        done, _ = await asyncio.wait(
            (pending, closing), timeout=wait_s, return_when="FIRST_COMPLETED"
        )
        if pending not in done:
            return WAITING
        self._pending = None
        return pending.result()

    def hand_over(self) -> UpstreamStream:
        """The call for a new owner (`stream_share`); this one's `cancel` no longer touches it."""
        assert self._pending is None, "hand over between reads only"
        self._handed_over = True
        return UpstreamStream(self._call)

    def cancel(self) -> None:
        """Cancel the RPC in core; a read in flight ends by itself (its outcome is dropped)."""
        if self._handed_over:
            return
        cancel_rpc(self._call)
        if self._pending is not None:
            self._pending.add_done_callback(_drop_outcome)
            self._pending = None


def _drop_outcome(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
