"""gRPC metric labels as grpc-ecosystem's Prometheus middleware writes them.

Stock dashboards and alerts (go-grpc-middleware's `providers/prometheus`, the older
go-grpc-prometheus, their Grafana dashboards) select on `grpc_type`, `grpc_service`,
`grpc_method` and `grpc_code`, with codes spelt as Go's `codes.Code.String()`
(`OK`, `NotFound`, `Canceled`, …). The service (server side) and the gateway (client side)
both label their calls this way.
"""

from __future__ import annotations

from functools import cache
from typing import Final

import grpc

UNARY: Final = "unary"
SERVER_STREAM: Final = "server_stream"

# grpc.StatusCode names → Go's spelling (note CANCELLED → Canceled).
GO_CODE_NAMES: Final = {
    "OK": "OK",
    "CANCELLED": "Canceled",
    "UNKNOWN": "Unknown",
    "INVALID_ARGUMENT": "InvalidArgument",
    "DEADLINE_EXCEEDED": "DeadlineExceeded",
    "NOT_FOUND": "NotFound",
    "ALREADY_EXISTS": "AlreadyExists",
    "PERMISSION_DENIED": "PermissionDenied",
    "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "FAILED_PRECONDITION": "FailedPrecondition",
    "ABORTED": "Aborted",
    "OUT_OF_RANGE": "OutOfRange",
    "UNIMPLEMENTED": "Unimplemented",
    "INTERNAL": "Internal",
    "UNAVAILABLE": "Unavailable",
    "DATA_LOSS": "DataLoss",
    "UNAUTHENTICATED": "Unauthenticated",
}
assert set(GO_CODE_NAMES) == {code.name for code in grpc.StatusCode}


def go_code(name: str) -> str:
    """`NOT_FOUND` → `NotFound` (an unknown name is kept as given)."""
    return GO_CODE_NAMES.get(name, name)


@cache
def split_method(full_method: str) -> tuple[str, str]:
    """`/pkg.Service/Method` → (`pkg.Service`, `Method`)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method
