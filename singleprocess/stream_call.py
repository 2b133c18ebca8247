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
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc

from singleprocess.call_outcome import PEER, HandlerCallDetails, ended, failure, unexpected
from singleprocess.context import InProcessContext

if TYPE_CHECKING:
    from singleprocess.channel import InProcessChannel, MetadataArg

_log = logging.getLogger(__name__)


class UnaryStream(grpc.aio.UnaryStreamMultiCallable[Any, Any]):
    def __init__(
        self,
        channel: InProcessChannel,
        method: str,
        request_serializer: Callable[[Any], bytes] | None,
        response_deserializer: Callable[[bytes], Any] | None,
    ) -> None:
        self._channel = channel
        self._method = method
        self._serialize = request_serializer
        self._deserialize = response_deserializer

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: MetadataArg | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> InProcessStreamCall:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        entries = tuple(metadata or ())
        details = HandlerCallDetails(self._method, entries)
        handler = self._channel._find(details)
        slot: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        serialize = None if handler is None else handler.response_serializer
        deserialize = self._deserialize

        async def sink(message: Any) -> None:
            # As over the wire: the handler's serializer, then the caller's deserializer.
            body = message if serialize is None else serialize(message)
            await slot.put(body if deserialize is None else deserialize(body))

        context = InProcessContext(grpc.aio.Metadata.from_tuple(entries), deadline, PEER, sink)
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
        try:
            raw = request if self._serialize is None else self._serialize(request)
            parse = handler.request_deserializer
            message = raw if parse is None else parse(raw)
        except Exception:
            _log.exception("cannot pass the request of %s", details.method)
            return failure(grpc.StatusCode.INTERNAL, "Exception serializing request!")
        timer = asyncio.timeout_at(deadline)
        try:
            async with timer:
                # grpc-stubs type behaviours for the sync API; grpc.aio passes its own context.
                result: Any = handler.unary_stream(message, context)  # type: ignore[arg-type]
                if inspect.isasyncgen(result):  # a handler that yields its messages
                    async for response in result:
                        await context.write(response)
                elif inspect.isawaitable(result):  # one that calls context.write
                    await result
        except grpc.aio.AbortError:
            return ended(context, fallback=grpc.StatusCode.UNKNOWN)
        except TimeoutError:
            if timer.expired():
                context.finish(cancelled=True)
                return failure(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            return unexpected(details.method, context)
        except asyncio.CancelledError:
            context.finish(cancelled=True)
            raise
        except Exception:
            return unexpected(details.method, context)
        if context.code() != grpc.StatusCode.OK:  # set_code without abort
            return ended(context, fallback=context.code())
        context.finish(cancelled=False)
        return None


class InProcessStreamCall(grpc.aio.UnaryStreamCall[Any, Any]):
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

    async def _finished(self) -> grpc.aio.AioRpcError | None:
        if not self._task.done():
            await asyncio.wait((self._task,))
        if self._task.cancelled():
            return failure(grpc.StatusCode.CANCELLED, "Locally cancelled by application!")
        return self._task.result()

    async def initial_metadata(self) -> grpc.aio.Metadata:
        return self._context.initial_metadata()

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
