"""What the in-process unary and server-streaming multi-callables share.

Both keep the channel, the method and the caller's (de)serializers, turn
`timeout` and `metadata` into a deadline and the handler's call details the
same way, and hand the request to the handler as bytes in between (the
caller's serializer, then the handler's deserializer), as over gRPC.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from singleprocess.call_outcome import HandlerCallDetails, ended, failure, unexpected
from singleprocess.context import InProcessContext
from singleprocess.deadline import DeadlineExceeded, within_deadline

if TYPE_CHECKING:
    from singleprocess.channel import InProcessChannel

_log = logging.getLogger(__name__)

MetadataArg = grpc.aio.Metadata | Sequence[tuple[str, str | bytes]]
Result = TypeVar("Result")


class InProcessMultiCallable:
    """Starts one call per `__call__`; subclasses say how (`_start_call`)."""

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
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        details = HandlerCallDetails(self._method, tuple(metadata or ()))
        return self._start_call(request, details, deadline)

    def _start_call(self, request: Any, details: HandlerCallDetails, deadline: float | None) -> Any:
        raise NotImplementedError

    def _handler_request(
        self, request: Any, parse: Callable[[bytes], Any] | None
    ) -> Any | grpc.aio.AioRpcError:
        """`request` as the handler takes it, or the failure to answer if it does not pass."""
        try:
            raw = request if self._serialize is None else self._serialize(request)
            return raw if parse is None else parse(raw)
        except Exception:
            _log.exception("cannot pass the request of %s", self._method)
            return failure(grpc.StatusCode.INTERNAL, "Exception serializing request!")

    async def _handled(
        self,
        handle: Callable[[], Coroutine[Any, Any, Result]],
        context: InProcessContext,
        deadline: float | None,
    ) -> Result | grpc.aio.AioRpcError:
        """What running the handler (`handle`) gave, or the call's failure as grpc.aio
        reports it: the handler's abort, the deadline, an exception that escaped it."""
        try:
            return await within_deadline(handle(), deadline)
        except grpc.aio.AbortError:
            return ended(context, fallback=grpc.StatusCode.UNKNOWN)
        except DeadlineExceeded:
            context.finish(cancelled=True)
            return failure(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        except asyncio.CancelledError:
            context.finish(cancelled=True)
            raise
        except Exception:
            return unexpected(self._method, context)
