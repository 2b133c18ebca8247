"""What a gRPC failure says to a REST client: `code`, `details` and a message that cannot leak.

`code` and `details` come from the `google.rpc.ErrorInfo` in `grpc-status-details-bin`
(reason lower-cased, metadata), per AIP-193. The message is the service's own unless
it may come from the gRPC runtime (connection errors name addresses; grpc.aio sends
"Unexpected <class ...>" for unhandled exceptions) or looks like internals; then the
failure's generic message is sent instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from gateway.errors.model import Specifics
from gateway.upstream import response_headers

ERROR_DOMAIN: Final = "execgate"
STATUS_DETAILS_KEY: Final = "grpc-status-details-bin"
# gRPC's own messages for a message over a channel's or server's size limit on the way
# back: the answer is too large to relay, which is neither the caller's quota nor retryable.
_RESPONSE_TOO_LARGE: Final = (
    "CLIENT: Received message larger than max",
    "SERVER: Sent message larger than max",
)
# Codes whose message may come from the gRPC runtime rather than the service.
_RUNTIME_CODES: Final = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
# What a message that may carry internals contains: literal text (found with `in`)
# and patterns, each checked only when a literal it needs is in the message (one regex
# with every alternative costs several times more on the error path of every 4xx).
_INTERNAL_TEXTS: Final = (
    "Unexpected <",
    "<class ",
    "<module ",
    "Traceback",
    'File "',
    "[::",
    "sqlite",
    "psycopg",
    "asyncpg",
)
_INTERNAL_PATTERNS: Final = (
    (("Error",), re.compile(r"\b[A-Z]\w*Error\b")),
    (("Exception",), re.compile(r"\b[A-Z]\w*Exception\b")),
    ((":",), re.compile(r"\b(?:ipv4|ipv6|unix|dns):|\w:\d{2,5}\b")),
    ((".",), re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")),
    (("/",), re.compile(r"(?:^|[\s'\"(])/\w+/")),
    (("SELECT", "INSERT", "UPDATE", "DELETE"), re.compile(r"\b(?:SELECT|INSERT|UPDATE|DELETE)\b")),
)
_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_MESSAGE: Final = 1000


def has_code(code: grpc.StatusCode) -> Callable[[grpc.aio.AioRpcError], bool]:
    """`Failure.applies` for the entry of one gRPC status code."""

    def applies(error: grpc.aio.AioRpcError) -> bool:
        return error.code() == code

    return applies


def has_reason(code: grpc.StatusCode, reason: str) -> Callable[[grpc.aio.AioRpcError], bool]:
    """`Failure.applies` for one service reason (its ErrorInfo) of one gRPC status code."""

    def applies(error: grpc.aio.AioRpcError) -> bool:
        if error.code() != code:
            return False
        info = error_info(error.trailing_metadata())
        return info is not None and info.domain == ERROR_DOMAIN and info.reason == reason

    return applies


def response_too_large(error: grpc.aio.AioRpcError) -> bool:
    """RESOURCE_EXHAUSTED raised by a message-size limit, not by the service's quota."""
    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return False
    details = error.details() or ""
    return any(text in details for text in _RESPONSE_TOO_LARGE)


def looks_internal(message: str) -> bool:
    # Plain loops: generator expressions cost more than the checks here.
    for text in _INTERNAL_TEXTS:
        if text in message:
            return True
    for needed, pattern in _INTERNAL_PATTERNS:
        for text in needed:
            if text in message:
                if pattern.search(message):
                    return True
                break
    return False


def error_info(
    trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
) -> error_details_pb2.ErrorInfo | None:
    """The first ErrorInfo of `grpc-status-details-bin`, if any decodes."""
    for key, value in trailing_metadata or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info
        except DecodeError:
            return None
    return None


def service_specifics(error: grpc.aio.AioRpcError) -> Specifics:
    """`Failure.specifics` of every gRPC entry: the service's message, code, details and
    allow-listed response metadata (e.g. `Retry-After`, `ETag`) as headers."""
    trailing = error.trailing_metadata()
    code, message = error.code(), error.details() or ""
    info = error_info(trailing)
    from_service = info is not None and info.domain == ERROR_DOMAIN
    error_code: str | None = None
    details: dict[str, object] | None = None
    if info is not None:
        reason = info.reason.lower()
        if _CODE.fullmatch(reason):
            error_code = reason
        details = dict(info.metadata) or None
    if not message or (code in _RUNTIME_CODES and not from_service) or looks_internal(message):
        safe_message = None  # the entry's generic message
    else:
        safe_message = message[:_MAX_MESSAGE]
    return Specifics(
        message=safe_message,
        code=error_code,
        details=details,
        headers=response_headers(error.initial_metadata(), trailing),
    )


def rpc_error(
    code: grpc.StatusCode,
    message: str,
    trailing_metadata: Iterable[tuple[str, str | bytes]] | None = None,
) -> grpc.aio.AioRpcError:
    """A client-side gRPC error as grpc.aio raises it (for samples and `from_grpc_error`)."""
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*(trailing_metadata or ())), details=message
    )


def service_error(
    code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str] | None = None
) -> grpc.aio.AioRpcError:
    """An error as the service sends it: message plus an execgate `ErrorInfo`."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata or {})
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(info)
    return rpc_error(code, message, ((STATUS_DETAILS_KEY, status.SerializeToString()),))
