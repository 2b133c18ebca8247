"""What the unary and the server-streaming in-process calls share: a call run by one task.

Status, trailing metadata, deadline, cancellation and done callbacks all follow
the task that runs the handler; the task ends with the call's failure (a
`grpc.aio.AioRpcError`) or with something else on success.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from singleprocess.call_outcome import failure
from singleprocess.context import InProcessContext


class TaskCall:
    """The `grpc.aio.Call` methods of a call whose handler runs in `_task`."""

    _task: asyncio.Task[Any]
    _context: InProcessContext
    _deadline: float | None

    async def _finished(self) -> grpc.aio.AioRpcError | None:
        """The call's failure once it ended, or None if it succeeded."""
        if not self._task.done():
            await asyncio.wait((self._task,))
        if self._task.cancelled():
            return failure(grpc.StatusCode.CANCELLED, "Locally cancelled by application!")
        outcome = self._task.result()
        return outcome if isinstance(outcome, grpc.aio.AioRpcError) else None

    async def trailing_metadata(self) -> grpc.aio.Metadata:
        error = await self._finished()
        return self._context.trailing_metadata() if error is None else error.trailing_metadata()

    async def code(self) -> grpc.StatusCode:
        error = await self._finished()
        return grpc.StatusCode.OK if error is None else error.code()

    async def details(self) -> str:
        error = await self._finished()
        return "" if error is None else error.details() or ""

    async def wait_for_connection(self) -> None:
        pass  # there is no connection to wait for

    def cancelled(self) -> bool:
        return self._task.cancelled()

    def done(self) -> bool:
        return self._task.done()

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(self._deadline - asyncio.get_running_loop().time(), 0.0)

    def cancel(self) -> bool:
        return self._task.cancel()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._task.add_done_callback(lambda _: callback(self))
