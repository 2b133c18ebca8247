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
call starts at once, as a task, like a grpc.aio call. The gateway's unary calls take
a shorter way with the same outcomes (`DirectUnaryRpc`): the handler runs in the
HTTP request's own task. Server-streaming calls
are served too (`singleprocess.stream_call`); client-streaming ones are not
(their multi-callables raise UNIMPLEMENTED).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine, Generator, Iterable
from typing import Any, NoReturn, Self

import grpc
from google.protobuf.message import Message

from gateway.unary_rpc import Metadatum, UnaryReply, serialize
from service.access_log import IN_PROCESS_PEER
from singleprocess.call_outcome import HandlerCallDetails, ended, failure
from singleprocess.context import InProcessContext
from singleprocess.multicallable import InProcessMultiCallable
from singleprocess.stream_call import UnaryStream
from singleprocess.task_call import TaskCall

_log = logging.getLogger(__name__)


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

    def direct_unary_rpc(self, method: str, deserialize: Callable[[bytes], Any]) -> DirectUnaryRpc:
        """The gateway's way in (`gateway.unary_rpc.DirectCallChannel`): no call object."""
        return DirectUnaryRpc(_UnaryUnary(self, method, serialize, deserialize))

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

    def _find(self, details: HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        for generic in self._handlers:
            handler = generic.service(details)
            if handler is not None:
                return handler
        return None

    def _refuse_if_closed(self) -> None:
        if self._closed.is_set():
            raise grpc.aio.UsageError("Channel is closed.")

    def _start(self, invocation: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        try:
            self._refuse_if_closed()
        except grpc.aio.UsageError:
            invocation.close()  # never to run: not reported as "never awaited"
            raise
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(invocation)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return task


class _UnaryUnary(InProcessMultiCallable, grpc.aio.UnaryUnaryMultiCallable[Any, Any]):
    def _start_call(
        self, request: Any, details: HandlerCallDetails, deadline: float | None
    ) -> InProcessCall:
        context = InProcessContext(details.invocation_metadata, deadline, IN_PROCESS_PEER)
        invocation = self._invoke(request, details, context, deadline)
        return InProcessCall(self._channel, invocation, context, deadline)

    async def _invoke(
        self,
        request: Any,
        details: HandlerCallDetails,
        context: InProcessContext,
        deadline: float | None,
    ) -> Any:
        """The response, or the call's failure as an `AioRpcError` (returned, not raised)."""
        handler = self._channel._find(details)
        if handler is None or handler.unary_unary is None:
            return failure(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        message = self._handler_request(request, handler.request_deserializer)
        if isinstance(message, grpc.aio.AioRpcError):
            return message
        behaviour = handler.unary_unary

        async def handle() -> Any:
            # grpc-stubs type behaviours for the sync API; grpc.aio passes its own context.
            result = behaviour(message, context)  # type: ignore[arg-type]
            return await result if inspect.isawaitable(result) else result

        response = await self._handled(handle, context, deadline)
        if isinstance(response, grpc.aio.AioRpcError):
            return response
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            # Answered too late (a handler that never yields is not cancelled):
            # over gRPC the caller would have given up already.
            context.finish(cancelled=True)
            return failure(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if context.code() != grpc.StatusCode.OK:  # set_code without abort
            return ended(context, fallback=context.code())
        try:
            serialize = handler.response_serializer
            body = response if serialize is None else serialize(response)
            reply = body if self._deserialize is None else self._deserialize(body)
        except Exception:
            _log.exception("cannot pass the response of %s", details.method)
            context.finish(cancelled=False)
            return failure(grpc.StatusCode.INTERNAL, "Failed to serialize or parse the response")
        context.finish(cancelled=False)
        return reply


class InProcessCall(TaskCall, grpc.aio.UnaryUnaryCall[Any, Any]):
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

    async def initial_metadata(self) -> grpc.aio.Metadata:
        error = await self._finished()
        return self._context.initial_metadata() if error is None else error.initial_metadata()


class DirectUnaryRpc:
    """`gateway.unary_rpc.UnaryRpc` in-process: the handler runs in the caller's task.

    What a unary multi-callable does, minus what only a caller holding a call object
    needs: no task, call object or `grpc.aio.Metadata` per call (docs/performance.md,
    "Single-process request path"). Outcomes are the multi-callable's (`_UnaryUnary._invoke`:
    the same statuses, deadline and details); cancelling the caller cancels the handler,
    as cancelling a call does. A call in flight belongs to its caller's task, so `close()`
    does not cancel it: the gateway closes the channel after its requests have drained.
    """

    __slots__ = ("_call",)

    def __init__(self, call: _UnaryUnary) -> None:
        self._call = call

    async def __call__(
        self, request: Message, timeout_s: float, metadata: tuple[Metadatum, ...]
    ) -> UnaryReply:
        call = self._call
        call._channel._refuse_if_closed()
        deadline = asyncio.get_running_loop().time() + timeout_s
        context = InProcessContext(metadata, deadline, IN_PROCESS_PEER)
        outcome = await call._invoke(
            request, HandlerCallDetails(call._method, metadata), context, deadline
        )
        if isinstance(outcome, grpc.aio.AioRpcError):
            raise outcome
        initial, trailing = context.metadata_pairs()
        return UnaryReply(outcome, initial, trailing)


class _NotServedInProcess:
    """A client-streaming multi-callable: not served in-process."""

    def __init__(self, method: str) -> None:
        self._method = method

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise failure(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{self._method}: client-streaming RPCs are not served in-process",
        )


class _StreamUnary(_NotServedInProcess, grpc.aio.StreamUnaryMultiCallable[Any, Any]):
    pass


class _StreamStream(_NotServedInProcess, grpc.aio.StreamStreamMultiCallable[Any, Any]):
    pass
