"""The wrapper around every handler: expected errors become statuses, nothing else leaks.

grpc.aio answers an unhandled exception with `Unexpected <class>: <message>`;
here such an exception is logged with the call's request id and answered
INTERNAL with a generic message instead. The request is parsed here too
(handlers are registered without a request deserializer), because grpc.aio
answers a request that does not parse with the same leaky text.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from service.errors import (
    BackendUnavailableError,
    GrpcFailure,
    InvalidArgumentError,
    ServiceError,
    grpc_failure,
    internal_failure,
)
from service.rpc.call import call_metadata
from service.store.protocol import StoreUnavailable

_log = logging.getLogger(__name__)

Request = TypeVar("Request", bound=Message)
Context = grpc.aio.ServicerContext[Any, Any]
Handler = Callable[[Request, Context], Awaitable[Any]]


def guarded(
    method: str, request_class: type[Request], handler: Handler[Request]
) -> Callable[[bytes, Context], Awaitable[Any]]:
    """The handler of `method`, taking the serialized request."""
    parse = request_class.FromString
    not_a_request = f"the request is not a valid {request_class.DESCRIPTOR.full_name}"

    async def call(raw_request: bytes, context: Context) -> Any:
        failure: GrpcFailure
        try:
            try:
                request = parse(raw_request)
            except DecodeError:
                raise InvalidArgumentError("request", not_a_request) from None
            return await handler(request, context)
        except ServiceError as error:
            failure = grpc_failure(error)
        except StoreUnavailable:
            _log.warning("store unavailable in %s (request id %s)", method, _request_id(context))
            failure = grpc_failure(BackendUnavailableError())
        except grpc.aio.AbortError:
            raise
        except Exception:
            _log.exception("unhandled error in %s (request id %s)", method, _request_id(context))
            failure = internal_failure()
        await context.abort(failure.code, failure.message, failure.trailing_metadata)

    return call


def _request_id(context: Context) -> str:
    return call_metadata(context).request_id or "-"
