"""The wrapper around every handler: expected errors become statuses, nothing else leaks.

grpc.aio answers an unhandled exception with `Unexpected <class>: <message>`;
here such an exception is logged with the call's request id and answered
INTERNAL with a generic message instead. The request is parsed here too
(handlers are registered without a request deserializer), because grpc.aio
answers a request that does not parse with the same leaky text.

Being the one place every call passes through and every status is decided,
it also counts the call in the metrics and writes its access log line. A
`grpc.aio.ServerInterceptor` doing the same costs more per call (an awaited
interceptor chain and a second wrapper; docs/performance.md) and learns the
status only from the context.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from service.access_log import AccessLog
from service.errors import (
    BackendUnavailableError,
    GrpcFailure,
    InvalidArgumentError,
    OverloadedError,
    ServiceError,
    grpc_failure,
    internal_failure,
)
from service.metrics import ServiceMetrics
from service.rpc.call import CallMetadata, call_metadata
from service.store.protocol import StoreUnavailable

_log = logging.getLogger(__name__)

Request = TypeVar("Request", bound=Message)
Context = grpc.aio.ServicerContext[Any, Any]
# The guard reads the call's metadata once and hands it to the handler.
Handler = Callable[[Request, CallMetadata, Context], Awaitable[Any]]

_OK = grpc.StatusCode.OK.name


def guarded(
    method: str,
    request_class: type[Request],
    handler: Handler[Request],
    metrics: ServiceMetrics,
    access_log: AccessLog,
    max_in_flight: int,
) -> Callable[[bytes, Context], Awaitable[Any]]:
    """The handler of `method` (`/pkg.Service/Method`), taking the serialized request.

    Beyond `max_in_flight` calls at once (all methods of the process), a call is
    answered RESOURCE_EXHAUSTED `OVERLOADED` at once: shedding costs microseconds,
    where queueing made every call slower (multi-second p99 under a burst).
    """
    parse = request_class.FromString
    not_a_request = f"the request is not a valid {request_class.DESCRIPTOR.full_name}"

    async def call(raw_request: bytes, context: Context) -> Any:
        started = time.perf_counter()
        metadata = call_metadata(context)
        # context.peer() is a call into gRPC core: once, and only when lines are written.
        peer = context.peer() if access_log.enabled else ""
        # The caller's x-request-id, else a new one, so log lines of one call correlate.
        request_id = (
            (metadata.request_id or secrets.token_hex(16)) if access_log.logs(peer) else None
        )
        metrics.in_flight += 1
        metrics.rpc_started(method)
        code = _OK
        failure: GrpcFailure
        try:
            try:
                # Watch streams are bounded on their own (`max_watchers`).
                if metrics.in_flight - metrics.watch_streams > max_in_flight:
                    raise OverloadedError(max_in_flight)
                if metadata.duplicated is not None:
                    raise duplicated_metadata(metadata.duplicated)
                try:
                    request = parse(raw_request)
                except DecodeError:
                    raise InvalidArgumentError("request", not_a_request) from None
                return await handler(request, metadata, context)
            except ServiceError as error:
                failure = grpc_failure(error)
            except StoreUnavailable:
                _log.warning(
                    "store unavailable in %s (request id %s)",
                    method,
                    request_id or metadata.request_id or "-",
                )
                failure = grpc_failure(BackendUnavailableError())
            except grpc.aio.AbortError:
                code = _aborted_code(context)
                raise
            except Exception:
                _log.exception(
                    "unhandled error in %s (request id %s)",
                    method,
                    request_id or metadata.request_id or "-",
                )
                failure = internal_failure()
            code = failure.code.name
            await context.abort(failure.code, failure.message, failure.trailing_metadata)
        except asyncio.CancelledError:  # the client went away or the deadline passed
            code = _cancelled_code(context)
            raise
        finally:
            metrics.in_flight -= 1
            duration = time.perf_counter() - started
            metrics.observe_rpc(method, code, duration)
            if request_id is not None:
                access_log.write(request_id, method, code, duration, peer)

    return call


def duplicated_metadata(key: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        key, f"{key} must be sent at most once (it was sent twice)", reason="DUPLICATE_HEADER"
    )


def _aborted_code(context: Context) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN.name


def _cancelled_code(context: Context) -> str:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED.name
    return grpc.StatusCode.CANCELLED.name
