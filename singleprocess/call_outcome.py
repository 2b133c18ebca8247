"""How an in-process call ends, shared by the unary and the server-streaming calls."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc

from singleprocess.context import InProcessContext

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class HandlerCallDetails:
    """What `GenericRpcHandler.service` is given (grpc.HandlerCallDetails)."""

    method: str
    invocation_metadata: tuple[tuple[str, str | bytes], ...]


def failure(
    code: grpc.StatusCode,
    details: str,
    initial: grpc.aio.Metadata | None = None,
    trailing: grpc.aio.Metadata | None = None,
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, initial or grpc.aio.Metadata(), trailing or grpc.aio.Metadata(), details
    )


def ended(context: InProcessContext, *, fallback: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """The failure the handler chose (abort or set_code); `fallback` if its code is OK."""
    context.finish(cancelled=False)
    code = context.code()
    return failure(
        fallback if code == grpc.StatusCode.OK else code,
        context.details(),
        context.initial_metadata(),
        context.trailing_metadata(),
    )


def unexpected(method: str, context: InProcessContext) -> grpc.aio.AioRpcError:
    # gRPC answers UNKNOWN; the exception's text stays in the log.
    _log.exception("unexpected error in the handler of %s", method)
    context.finish(cancelled=False)
    return failure(grpc.StatusCode.UNKNOWN, "Unexpected error in the RPC handler")
