"""Turn an `ExecutionDetail` into the stored `ExecutionRow` (detail and summary bytes, etag).

The read path returns these bytes without parsing them, so everything a
reader sees is decided here, once, at write time.
"""

from __future__ import annotations

import hashlib

from execgate.retrievers.v1 import execution_pb2

from service.errors import InvalidArgumentError
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
# The largest stored detail: GetExecution returns it whole, and the service sends at
# most 16 MiB (service.server.MAX_MESSAGE_BYTES); 1 MiB stays for the call's framing.
MAX_DETAIL_BYTES = 15 * 1024 * 1024


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
    writer_fields: execution_pb2.ExecutionSummary | None = None,
) -> ExecutionRow:
    """`total_returned`: the number of documents in `detail.documents` (one JSON array text,
    which the caller built and counted, so it need not be parsed again here).
    `writer_fields`: a summary whose inputs_hash, query_summary and trace_id are kept (what
    a writer said at the start and only the summary holds: carried from row to row).

    While in flight the stored summary has no `duration_ms`: a listing adds
    the time so far when it reads the row (`in_flight_summary`)."""
    status = STATUS_NAMES.get(detail.status)
    if status is None:  # UNSPECIFIED or the filter-only RUNNING: a reader must never see them
        raise ValueError(f"an execution cannot be stored with status {detail.status}")
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
    cache_hit_rate = _cache_hit_rate(statistics)
    if cache_hit_rate is not None:
        summary.cache_hit_rate = cache_hit_rate
    if writer_fields is not None:
        if writer_fields.HasField("inputs_hash"):
            summary.inputs_hash = writer_fields.inputs_hash
        if writer_fields.HasField("query_summary"):
            summary.query_summary = writer_fields.query_summary
        if writer_fields.HasField("trace_id"):
            summary.trace_id = writer_fields.trace_id

    # Deterministic: map entries (stages) in key order, so equal records have equal etags.
    detail_bytes = detail.SerializeToString(deterministic=True)
    if len(detail_bytes) > MAX_DETAIL_BYTES:
        # Stage reports accumulate: refuse the write that would make it unreadable.
        raise InvalidArgumentError(
            "execution",
            f"the execution would be {len(detail_bytes)} bytes, more than the "
            f"{MAX_DETAIL_BYTES} a read can return",
            reason="EXECUTION_TOO_LARGE",
        )
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


def summary_of(row: ExecutionRow) -> execution_pb2.ExecutionSummary:
    return execution_pb2.ExecutionSummary.FromString(row.summary)


def _cache_hit_rate(statistics: execution_pb2.RetrieverExecutionStatistics) -> float | None:
    """Cache hits among the stages that said whether they hit; None when none said."""
    reported = [
        stage.cache_hit for stage in statistics.stages.values() if stage.HasField("cache_hit")
    ]
    return sum(reported) / len(reported) if reported else None


def legacy_etag(etag: str) -> str:
    """The validator of the representation with the deprecated `results` alias filled."""
    return etag[:-1] + '-legacy"'
