"""Turn an `ExecutionDetail` into the stored `ExecutionRow` (detail and summary bytes, etag).

The read path returns these bytes without parsing them, so everything a
reader sees is decided here, once, at write time.
"""

from __future__ import annotations

import hashlib

from execgate.retrievers.v1 import execution_pb2

from service.store.protocol import ExecutionRow, ExecutionStatusName

Status = execution_pb2.ExecutionStatus

STATUS_NAMES: dict[Status.ValueType, ExecutionStatusName] = {
    execution_pb2.EXECUTION_STATUS_PENDING: "pending",
    execution_pb2.EXECUTION_STATUS_PROCESSING: "processing",
    execution_pb2.EXECUTION_STATUS_COMPLETED: "completed",
    execution_pb2.EXECUTION_STATUS_FAILED: "failed",
}
STATUS_VALUES: dict[ExecutionStatusName, Status.ValueType] = {
    name: value for value, name in STATUS_NAMES.items()
}
TERMINAL: frozenset[ExecutionStatusName] = frozenset({"completed", "failed"})


def etag_of(detail: bytes) -> str:
    """A strong validator: any change of the stored bytes changes it."""
    return '"' + hashlib.blake2b(detail, digest_size=16).hexdigest() + '"'


def to_row(
    detail: execution_pb2.ExecutionDetail,
    *,
    namespace_id: str,
    request_id: str | None,
    total_processed: int,
    total_returned: int,
) -> ExecutionRow:
    """`total_returned`: the number of documents in `detail.documents` (one JSON array text,
    which the caller built and counted, so it need not be parsed again here)."""
    status = STATUS_NAMES[detail.status]
    terminal = status in TERMINAL
    statistics = detail.stage_statistics
    completed_at_us = detail.completed_at.ToMicroseconds() if terminal else None
    duration_ms = statistics.total_time_ms if terminal else None

    summary = execution_pb2.ExecutionSummary(
        execution_id=detail.execution_id,
        retriever_id=detail.retriever_id,
        status=detail.status,
        created_at=detail.created_at,
        credits_used=statistics.credits_used,
        total_processed=total_processed,
        total_returned=total_returned,
    )
    if terminal:
        summary.completed_at.CopyFrom(detail.completed_at)
        summary.duration_ms = statistics.total_time_ms

    # Deterministic: map entries (stages) in key order, so equal records have equal etags.
    detail_bytes = detail.SerializeToString(deterministic=True)
    return ExecutionRow(
        execution_id=detail.execution_id,
        namespace_id=namespace_id,
        retriever_id=detail.retriever_id,
        request_id=request_id,
        status=status,
        created_at_us=detail.created_at.ToMicroseconds(),
        completed_at_us=completed_at_us,
        duration_ms=duration_ms,
        credits_used=statistics.credits_used,
        detail=detail_bytes,
        summary=summary.SerializeToString(deterministic=True),
        etag=etag_of(detail_bytes),
    )


def total_processed_of(row: ExecutionRow) -> int:
    return execution_pb2.ExecutionSummary.FromString(row.summary).total_processed


def legacy_etag(etag: str) -> str:
    """The validator of the representation with the deprecated `results` alias filled."""
    return etag[:-1] + '-legacy"'
