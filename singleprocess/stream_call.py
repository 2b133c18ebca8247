"""Server-streaming calls of the in-process channel (WatchExecution in single-process mode).

The handler runs as a task, as over gRPC, and hands each message to the
caller through a one-message slot: `context.write` waits until the caller has
taken the previous message, the backpressure HTTP/2 flow control gives over
the network, so a caller that stops reading stops the handler instead of
piling messages up. Messages still cross as bytes (the handler's serializer,
then the caller's deserializer). Outcomes follow grpc.aio: the handler's
status (abort, or OK when it returns), DEADLINE_EXCEEDED for the deadline,
CANCELLED when the caller cancels, UNKNOWN for an exception that escapes the
handler; `read()` returns `grpc.aio.EOF` at the end of a stream that ended OK.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import grpc

from service.access_log import IN_PROCESS_PEER
from singleprocess.call_outcome import HandlerCallDetails, ended, failure
from singleprocess.context import InProcessContext
from singleprocess.multicallable import InProcessMultiCallable
from singleprocess.task_call import TaskCall


class UnaryStream(InProcessMultiCallable, grpc.aio.UnaryStreamMultiCallable[Any, Any]):
    def _start_call(
        self, request: Any, details: HandlerCallDetails, deadline: float | None
    ) -> InProcessStreamCall:
        handler = self._channel._find(details)
        slot: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        serialize = None if handler is None else handler.response_serializer
        deserialize = self._deserialize

        async def sink(message: Any) -> None:
            # As over the wire: the handler's serializer, then the caller's deserializer.
            body = message if serialize is None else serialize(message)
            await slot.put(body if deserialize is None else deserialize(body))

        context = InProcessContext(details.invocation_metadata, deadline, IN_PROCESS_PEER, sink)
        invocation = self._invoke(handler, request, details, context, deadline)
        return InProcessStreamCall(self._channel._start(invocation), slot, context, deadline)

    async def _invoke(
        self,
        handler: grpc.RpcMethodHandler[Any, Any] | None,
        request: Any,
        details: HandlerCallDetails,
        context: InProcessContext,
        deadline: float | None,
    ) -> grpc.aio.AioRpcError | None:
        """None when the stream ended OK, else its failure (returned, not raised)."""
        if handler is None or handler.unary_stream is None:
            return failure(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        message = self._handler_request(request, handler.request_deserializer)
        if isinstance(message, grpc.aio.AioRpcError):
            return message
        behaviour = handler.unary_stream

        async def handle() -> None:
            # grpc-stubs type behaviours for the sync API; grpc.aio passes its own context.
            result: Any = behaviour(message, context)  # type: ignore[arg-type]
            if inspect.isasyncgen(result):  # a handler that yields its messages
                async for response in result:
                    await context.write(response)
            elif inspect.isawaitable(result):  # one that calls context.write
                await result

        outcome = await self._handled(handle, context, deadline)
        if outcome is not None:
            return outcome
        if context.code() != grpc.StatusCode.OK:  # set_code without abort
            return ended(context, fallback=context.code())
        context.finish(cancelled=False)
        return None


class InProcessStreamCall(TaskCall, grpc.aio.UnaryStreamCall[Any, Any]):
    """A started server-streaming call: iterate it, or `read()` until `grpc.aio.EOF`."""

    def __init__(
        self,
        task: asyncio.Task[grpc.aio.AioRpcError | None],
        slot: asyncio.Queue[Any],
        context: InProcessContext,
        deadline: float | None,
    ) -> None:
        self._task = task
        self._slot = slot
        self._context = context
        self._deadline = deadline

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Any]:
        while True:
            message = await self.read()
            if message is grpc.aio.EOF:
                return
            yield message

    async def read(self) -> Any:
        """The next message; `grpc.aio.EOF` after the last; raises the call's failure."""
        if self._slot.empty() and not self._task.done():
            taking = asyncio.ensure_future(self._slot.get())
            try:
                await asyncio.wait((taking, self._task), return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not taking.done():
                    taking.cancel()
            if taking.done() and not taking.cancelled():
                return taking.result()
        if not self._slot.empty():
            return self._slot.get_nowait()
        error = await self._finished()
        if error is not None:
            raise error
        return grpc.aio.EOF

    async def initial_metadata(self) -> grpc.aio.Metadata:
        return self._context.initial_metadata()
