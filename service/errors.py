"""The errors the service answers on purpose, and the one place that turns them into gRPC statuses.

Every expected failure is a `ServiceError` subclass carrying a gRPC code, an
AIP-193 reason (UPPER_SNAKE) and small metadata. `grpc_failure` renders one
as status code, message and trailing metadata with a `google.rpc.Status`
(holding a `google.rpc.ErrorInfo`, domain "execgate") in
`grpc-status-details-bin`. Anything else that escapes a handler is answered by
`internal_failure`: INTERNAL with a generic message, never the exception text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

DOMAIN = "execgate"
STATUS_DETAILS_KEY = "grpc-status-details-bin"

Metadata = tuple[tuple[str, str | bytes], ...]


class ServiceError(Exception):
    """Base of every failure the service reports to its caller deliberately."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    # Trailing metadata sent with the status besides its details (e.g. `retry-after`).
    trailers: Metadata = ()

    def __init__(self, message: str, *, reason: str, metadata: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class NotFoundError(ServiceError):
    """A namespace, retriever or execution does not exist or is not visible to the caller.

    The two cases are deliberately indistinguishable (same message, same details).
    """

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, resource: str, identifier: str):
        super().__init__(
            f"{resource.capitalize()} {identifier} not found",
            reason=f"{resource.upper()}_NOT_FOUND",
            metadata={"resource": resource, "id": identifier},
        )


class UnauthenticatedError(ServiceError):
    """The call carries no API key (MISSING_API_KEY) or one we do not know (INVALID_API_KEY)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(ServiceError):
    """The API key is valid but lacks the permission ("read" or "write") the RPC needs."""

    code = grpc.StatusCode.PERMISSION_DENIED

    def __init__(self, permission: str):
        super().__init__(
            f"The API key lacks the {permission!r} permission",
            reason="PERMISSION_DENIED",
            metadata={"permission": permission},
        )


class InvalidArgumentError(ServiceError):
    """A request field (named in metadata "field") is malformed or impossible."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, message: str, *, reason: str = "INVALID_ARGUMENT"):
        super().__init__(message, reason=reason, metadata={"field": field})


class ExecutionTerminalError(ServiceError):
    """A write targets an execution that is already completed or failed (immutable)."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, execution_id: str, status: str):
        super().__init__(
            f"Execution {execution_id} is {status} and can no longer change",
            reason="EXECUTION_TERMINAL",
            metadata={"resource": "execution", "id": execution_id, "status": status},
        )


class BackendUnavailableError(ServiceError):
    """The store cannot be reached now; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self) -> None:
        super().__init__(
            "The execution store is temporarily unavailable", reason="BACKEND_UNAVAILABLE"
        )


class OverloadedError(ServiceError):
    """More calls in flight than the service's bound: shed at once, not queued.

    RESOURCE_EXHAUSTED, not UNAVAILABLE: the gateway retries UNAVAILABLE (on another
    backend, up to five attempts), which would multiply the load that caused it. The
    reason OVERLOADED tells the gateway it is server overload (503), not a quota (429).
    """

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, max_in_flight: int) -> None:
        super().__init__(
            "The service is overloaded; retry later",
            reason="OVERLOADED",
            metadata={"max_in_flight": str(max_in_flight)},
        )
        self.trailers = (("retry-after", _RETRY_AFTER_SECONDS),)


class RateLimitedError(ServiceError):
    """The API key has used up its rate limit; `retry-after` and the IETF draft's
    `ratelimit` and `ratelimit-policy` say when and how much (gateway: headers)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, retry_after_s: int, policy: str) -> None:
        super().__init__(
            "Too many requests for this API key; retry later",
            reason="RATE_LIMITED",
            metadata={"retry_after_seconds": str(retry_after_s)},
        )
        self.trailers = (
            ("retry-after", str(retry_after_s)),
            ("ratelimit", f'"default";r=0;t={retry_after_s}'),
            ("ratelimit-policy", policy),
        )


class StreamInterruptedError(ServiceError):
    """The server ends a watch stream that is not finished (duration limit, shutdown).

    UNAVAILABLE, the status clients retry: reconnecting with `last_event_id`
    (in the metadata) resumes where the stream stopped.
    """

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str, *, reason: str, last_event_id: str):
        super().__init__(
            f"{message}; reconnect with last_event_id={last_event_id} to resume",
            reason=reason,
            metadata={"last_event_id": last_event_id},
        )


# Seconds a client should wait before retrying an UNAVAILABLE answer; the
# gateway copies this metadata into the HTTP `Retry-After` header.
_RETRY_AFTER_SECONDS = "1"


@dataclass(frozen=True, slots=True)
class GrpcFailure:
    code: grpc.StatusCode
    message: str
    trailing_metadata: Metadata


def _failure(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: Mapping[str, str],
    extra: Metadata = (),
) -> GrpcFailure:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata))
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    trailers: Metadata = ((STATUS_DETAILS_KEY, status.SerializeToString()),)
    if code is grpc.StatusCode.UNAVAILABLE:
        trailers += (("retry-after", _RETRY_AFTER_SECONDS),)
    return GrpcFailure(code, message, trailers + extra)


def grpc_failure(error: ServiceError) -> GrpcFailure:
    return _failure(error.code, error.message, error.reason, error.metadata, error.trailers)


def internal_failure() -> GrpcFailure:
    return _failure(grpc.StatusCode.INTERNAL, "Internal error", "INTERNAL", {})
