"""Read the status and `google.rpc.ErrorInfo` of a failed call, as a client would."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]


@dataclass(frozen=True)
class Failure:
    code: grpc.StatusCode
    message: str
    reason: str
    domain: str
    metadata: dict[str, str]


def failure(error: grpc.aio.AioRpcError) -> Failure:
    """The status and the single ErrorInfo detail of a failed call (asserts it is there)."""
    details = [
        value for key, value in error.trailing_metadata() or () if key == "grpc-status-details-bin"
    ]
    assert len(details) == 1, f"no google.rpc.Status in {error!r}"
    raw = details[0]
    assert isinstance(raw, bytes)
    status = status_pb2.Status.FromString(raw)
    assert status.code == error.code().value[0]
    assert status.message == error.details()
    assert len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return Failure(
        code=error.code(),
        message=error.details() or "",
        reason=info.reason,
        domain=info.domain,
        metadata=dict(info.metadata),
    )
