"""A `grpc.aio.Channel` whose unary calls run the service's registered handlers in this process.

The in-process counterpart of grpc-gateway's `Register…HandlerServer`: the
gateway builds its multi-callables on this channel as on a real one, and each
call looks its method up with `GenericRpcHandler.service` in the handlers the
service registers on its gRPC server, so authentication, namespaces, the
guard, metrics, access log and error details are the service's own. Only the
network hop is gone; messages still cross as bytes (the caller's serializer,
then the handler's deserializer, and back), so both sides see exactly what
they would over gRPC.

Outcomes follow grpc.aio: a failure is a `grpc.aio.AioRpcError` with the
handler's status, details and metadata; the deadline (from `timeout`) cancels
the handler and answers DEADLINE_EXCEEDED; cancelling the awaiting task
cancels the handler; an unknown method is UNIMPLEMENTED; an exception that
escapes a handler is logged and answered UNKNOWN with a generic message. Each
call starts at once, as a task, like a grpc.aio call. Server-streaming calls
are served too (`singleprocess.stream_call`); client-streaming ones are not
(their multi-callables raise UNIMPLEMENTED).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine, Generator, Iterable, Sequence
from typing import Any, NoReturn, Self

import grpc

from singleprocess.call_outcome import PEER, HandlerCallDetails, ended, failure, unexpected
from singleprocess.context import InProcessContext
from singleprocess.stream_call import UnaryStream

_log = logging.getLogger(__name__)

MetadataArg = grpc.aio.Metadata | Sequence[tuple[str, str | bytes]]
_failure = failure
_HandlerCallDetails = HandlerCallDetails


class InProcessChannel(grpc.aio.Channel):
    """Unary calls to `handlers` without a network hop; close() cancels the calls in flight."""

    def __init__(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._handlers = tuple(handlers)
        self._calls: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,  # generated stubs pass it; nothing to register
    ) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
        return _UnaryUnary(self, method, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> UnaryStream:
        return UnaryStream(self, method, request_serializer, response_deserializer)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> _StreamUnary:
        return _StreamUnary(method)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> _StreamStream:
        return _StreamStream(method)

    async def close(self, grace: float | None = None) -> None:
        self._closed.set()
        calls = tuple(self._calls)
        if calls and grace:
            await asyncio.wait(calls, timeout=grace)
        for call in calls:
            call.cancel()
        if calls:
            await asyncio.wait(calls)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        if self._closed.is_set():
            return grpc.ChannelConnectivity.SHUTDOWN
        return grpc.ChannelConnectivity.READY  # nothing to connect

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        if self.get_state() == last_observed_state:
            await self._closed.wait()  # READY changes only by closing

    async def channel_ready(self) -> None:
        pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close(None)

    def _find(self, details: _HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        for generic in self._handlers:
            handler = generic.service(details)
            if handler is not None:
                return handler
        return None

    def _start(self, invocation: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        if self._closed.is_set():
            invocation.close()
            raise grpc.aio.UsageError("Channel is closed.")
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(invocation)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return task


class _UnaryUnary(grpc.aio.UnaryUnaryMultiCallable[Any, Any]):
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
    ) -> InProcessCall:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        entries = tuple(metadata or ())
        context = InProcessContext(grpc.aio.Metadata.from_tuple(entries), deadline, PEER)
        details = _HandlerCallDetails(self._method, entries)
        invocation = self._invoke(request, details, context, deadline)
        return InProcessCall(self._channel, invocation, context, deadline)

    async def _invoke(
        self,
        request: Any,
        details: _HandlerCallDetails,
        context: InProcessContext,
        deadline: float | None,
    ) -> Any:
        """The response, or the call's failure as an `AioRpcError` (returned, not raised)."""
        handler = self._channel._find(details)
        if handler is None or handler.unary_unary is None:
            return _failure(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        try:
            raw = request if self._serialize is None else self._serialize(request)
            parse = handler.request_deserializer
            message = raw if parse is None else parse(raw)
        except Exception:
            _log.exception("cannot pass the request of %s", details.method)
            return _failure(grpc.StatusCode.INTERNAL, "Exception serializing request!")
        timer = asyncio.timeout_at(deadline)
        try:
            async with timer:
                # grpc-stubs type behaviours for the sync API; grpc.aio passes its own context.
                result = handler.unary_unary(message, context)  # type: ignore[arg-type]
                response = await result if inspect.isawaitable(result) else result
        except grpc.aio.AbortError:
            return self._ended(context, fallback=grpc.StatusCode.UNKNOWN)
        except TimeoutError:
            if timer.expired():
                context.finish(cancelled=True)
                return _failure(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            return self._unexpected(details, context)
        except asyncio.CancelledError:
            context.finish(cancelled=True)
            raise
        except Exception:
            return self._unexpected(details, context)
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            # Answered too late (a handler that never yields is not cancelled):
            # over gRPC the caller would have given up already.
            context.finish(cancelled=True)
            return _failure(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if context.code() != grpc.StatusCode.OK:  # set_code without abort
            return self._ended(context, fallback=context.code())
        try:
            serialize = handler.response_serializer
            body = response if serialize is None else serialize(response)
            reply = body if self._deserialize is None else self._deserialize(body)
        except Exception:
            _log.exception("cannot pass the response of %s", details.method)
            context.finish(cancelled=False)
            return _failure(grpc.StatusCode.INTERNAL, "Failed to serialize or parse the response")
        context.finish(cancelled=False)
        return reply

    @staticmethod
    def _ended(context: InProcessContext, *, fallback: grpc.StatusCode) -> grpc.aio.AioRpcError:
        return ended(context, fallback=fallback)

    @staticmethod
    def _unexpected(
        details: _HandlerCallDetails, context: InProcessContext
    ) -> grpc.aio.AioRpcError:
        return unexpected(details.method, context)


class InProcessCall(grpc.aio.UnaryUnaryCall[Any, Any]):
    """A started unary call: awaitable, with its metadata, status and deadline."""

    def __init__(
        self,
        channel: InProcessChannel,
        invocation: Coroutine[Any, Any, Any],
        context: InProcessContext,
        deadline: float | None,
    ) -> None:
        self._context = context
        self._deadline = deadline
        self._task = channel._start(invocation)

    def __await__(self) -> Generator[Any, None, Any]:
        outcome = yield from self._task.__await__()
        if isinstance(outcome, grpc.aio.AioRpcError):
            raise outcome
        return outcome

    async def _finished(self) -> grpc.aio.AioRpcError | None:
        if not self._task.done():
            await asyncio.wait((self._task,))
        if self._task.cancelled():
            return _failure(grpc.StatusCode.CANCELLED, "Locally cancelled by application!")
        outcome = self._task.result()
        return outcome if isinstance(outcome, grpc.aio.AioRpcError) else None

    async def initial_metadata(self) -> grpc.aio.Metadata:
        error = await self._finished()
        return self._context.initial_metadata() if error is None else error.initial_metadata()

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


class _NotServedInProcess:
    """A client-streaming multi-callable: not served in-process."""

    def __init__(self, method: str) -> None:
        self._method = method

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise _failure(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{self._method}: client-streaming RPCs are not served in-process",
        )


class _StreamUnary(_NotServedInProcess, grpc.aio.StreamUnaryMultiCallable[Any, Any]):
    pass


class _StreamStream(_NotServedInProcess, grpc.aio.StreamStreamMultiCallable[Any, Any]):
    pass
