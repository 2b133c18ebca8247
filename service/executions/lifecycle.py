"""The write path's state machine: pending → processing → completed | failed.

Each write happens in two steps. `prepare_*` validates and normalises the
request on its own (before any store transaction). The matching transition
(`report_stage`, `complete`, `fail`) then applies it to the current row inside
the store's transaction; it is pure and fast, as the store requires, and
raises `ExecutionTerminalError` or `InvalidArgumentError` when the row's state forbids
the change. Invariants kept here (CONTRACT.md): `error` only on failed,
`completed_at` only on completed/failed, `current_stage` only while in flight,
`stages_completed <= total_stages` and never decreasing, `efficiency`
computed, never trusted.

Completing or failing is idempotent for an identical request: a writer whose
first attempt committed but whose answer was lost (a replica killed
mid-call, then gRPC's retry on another) gets the stored execution back instead
of EXECUTION_TERMINAL. A different request to a terminal execution is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from execgate.retrievers.v1 import execution_pb2, execution_writer_service_pb2
from execgate.type.v1 import raw_json_pb2

from service.errors import ExecutionTerminalError, InvalidArgumentError
from service.executions import checks
from service.executions.records import STATUS_NAMES, TERMINAL, summary_of, to_row
from service.store.protocol import ExecutionRow

MAX_TOTAL_STAGES = 1000
MAX_STAGE_NAME = 128
MAX_ERROR = 4096
MAX_WARNINGS = 100
MAX_WARNING = 1024
MAX_QUERY_SUMMARY = 1024
MAX_STAGES = MAX_TOTAL_STAGES  # distinct stage names one execution may report
EMPTY_OBJECT = "{}"
EMPTY_ARRAY = "[]"


@dataclass(frozen=True, slots=True)
class StageReport:
    stage_name: str
    statistics: execution_pb2.StageStatistics
    current_stage: str | None
    stages_completed: int
    budget: raw_json_pb2.RawJson | None  # replaces the stored budget when set


@dataclass(frozen=True, slots=True)
class Completion:
    documents: tuple[raw_json_pb2.RawJson, ...]
    pagination: raw_json_pb2.RawJson
    budget: raw_json_pb2.RawJson
    warnings: tuple[str, ...]
    optimization_applied: bool
    optimization_summary: raw_json_pb2.RawJson | None
    learned_fusion_context: raw_json_pb2.RawJson | None
    cached_at: float | None
    total_time_ms: float
    credits_used: float
    stages_completed: int  # 0: "all of them"


@dataclass(frozen=True, slots=True)
class Failure:
    error: str
    total_time_ms: float


def start(
    request: execution_writer_service_pb2.StartExecutionRequest,
    *,
    execution_id: str,
    namespace_id: str,
    retriever_id: str,
    now_us: int,
) -> ExecutionRow:
    """A new pending execution (not yet stored)."""
    request_id = checks.request_id(request.request_id) if request.request_id else None
    if not 0 <= request.total_stages <= MAX_TOTAL_STAGES:
        raise InvalidArgumentError(
            "total_stages", f"total_stages must be between 0 and {MAX_TOTAL_STAGES}"
        )
    detail = execution_pb2.ExecutionDetail(
        retriever_id=retriever_id,
        execution_id=execution_id,
        status=execution_pb2.EXECUTION_STATUS_PENDING,
        documents=raw_json_pb2.RawJsonList(json=EMPTY_ARRAY),
        pagination=raw_json_pb2.RawJson(json=EMPTY_OBJECT),
        stage_statistics=execution_pb2.RetrieverExecutionStatistics(),
        budget=raw_json_pb2.RawJson(json=EMPTY_OBJECT),
        total_stages=request.total_stages,
    )
    detail.created_at.FromMicroseconds(now_us)
    return to_row(
        detail,
        namespace_id=namespace_id,
        request_id=request_id,
        total_processed=0,
        total_returned=0,
        writer_fields=_writer_summary_fields(request),
    )


def _writer_summary_fields(
    request: execution_writer_service_pb2.StartExecutionRequest,
) -> execution_pb2.ExecutionSummary:
    fields = execution_pb2.ExecutionSummary()
    if request.HasField("trace_id"):
        fields.trace_id = checks.printable_ascii(request.trace_id, "trace_id", 128)
    if request.HasField("inputs_hash"):
        fields.inputs_hash = checks.printable_ascii(request.inputs_hash, "inputs_hash", 128)
    if request.HasField("query_summary"):
        fields.query_summary = checks.text(
            request.query_summary, "query_summary", max_length=MAX_QUERY_SUMMARY
        )
    return fields


def prepare_stage_report(
    request: execution_writer_service_pb2.ReportStageProgressRequest,
) -> StageReport:
    stage_name = checks.text(request.stage_name, "stage_name", max_length=MAX_STAGE_NAME)
    if not request.HasField("statistics"):
        raise InvalidArgumentError("statistics", "statistics is required")
    given = request.statistics
    input_count = checks.non_negative_count(given.input_count, "statistics.input_count")
    output_count = checks.non_negative_count(given.output_count, "statistics.output_count")
    statistics = execution_pb2.StageStatistics(
        input_count=input_count,
        output_count=output_count,
        duration_ms=checks.non_negative_number(given.duration_ms, "statistics.duration_ms"),
        efficiency=output_count / input_count if input_count else 0.0,
        metadata=(
            checks.json_object(given.metadata, "statistics.metadata")
            if given.HasField("metadata")
            else raw_json_pb2.RawJson(json=EMPTY_OBJECT)
        ),
    )
    if given.HasField("cache_hit"):
        statistics.cache_hit = given.cache_hit
    if given.HasField("cached_at"):
        if not given.cache_hit:
            raise InvalidArgumentError(
                "statistics.cached_at", "statistics.cached_at is only allowed with cache_hit=true"
            )
        statistics.cached_at = checks.non_negative_number(given.cached_at, "statistics.cached_at")
    if given.HasField("error"):
        statistics.error = checks.text(given.error, "statistics.error", max_length=MAX_ERROR)
    if given.HasField("llm_calls"):
        statistics.llm_calls = checks.non_negative_count(given.llm_calls, "statistics.llm_calls")
    if given.HasField("tokens_used"):
        statistics.tokens_used = checks.non_negative_count(
            given.tokens_used, "statistics.tokens_used"
        )
    current_stage = (
        checks.text(request.current_stage, "current_stage", max_length=MAX_STAGE_NAME)
        if request.HasField("current_stage")
        else None
    )
    return StageReport(
        stage_name=stage_name,
        statistics=statistics,
        current_stage=current_stage,
        stages_completed=checks.non_negative_count(request.stages_completed, "stages_completed"),
        budget=(
            checks.json_object(request.budget, "budget") if request.HasField("budget") else None
        ),
    )


def report_stage(row: ExecutionRow, report: StageReport) -> ExecutionRow:
    detail = _in_flight(row)
    _set_stages_completed(detail, report.stages_completed)
    stages = detail.stage_statistics.stages
    # The first stage to report is the one that saw every input document;
    # it may report again (progress updates) until a second stage appears.
    first_stage = not stages or (len(stages) == 1 and report.stage_name in stages)
    summary = summary_of(row)
    total_processed = report.statistics.input_count if first_stage else summary.total_processed
    if report.stage_name not in stages:
        if len(stages) >= MAX_STAGES:
            raise InvalidArgumentError(
                "stage_name", f"an execution reports at most {MAX_STAGES} distinct stages"
            )
        # Pipeline order: a map has none, so the order of first reports is kept beside it.
        detail.stage_statistics.stages_order.append(report.stage_name)
    stages[report.stage_name].CopyFrom(report.statistics)
    detail.status = execution_pb2.EXECUTION_STATUS_PROCESSING
    if report.budget is not None:
        detail.budget.CopyFrom(report.budget)
    if report.current_stage is None:
        detail.ClearField("current_stage")
    else:
        detail.current_stage = report.current_stage
    return to_row(
        detail,
        namespace_id=row.namespace_id,
        request_id=row.request_id,
        total_processed=total_processed,
        total_returned=0,  # documents arrive only with completion
        writer_fields=summary,
    )


def prepare_completion(
    request: execution_writer_service_pb2.CompleteExecutionRequest,
) -> Completion:
    documents = tuple(
        checks.json_object(document, f"documents[{index}]")
        for index, document in enumerate(request.documents)
    )
    if len(request.warnings) > MAX_WARNINGS:
        raise InvalidArgumentError("warnings", f"at most {MAX_WARNINGS} warnings are allowed")
    warnings = tuple(
        checks.text(warning, f"warnings[{index}]", max_length=MAX_WARNING)
        for index, warning in enumerate(request.warnings)
    )
    has_summary = request.HasField("optimization_summary")
    if request.optimization_applied and not has_summary:
        raise InvalidArgumentError(
            "optimization_summary",
            "optimization_summary is required when optimization_applied is true",
        )
    if has_summary and not request.optimization_applied:
        raise InvalidArgumentError(
            "optimization_summary",
            "optimization_summary is only allowed when optimization_applied is true",
        )
    return Completion(
        documents=documents,
        pagination=_object_or_empty(request, "pagination"),
        budget=_object_or_empty(request, "budget"),
        warnings=warnings,
        optimization_applied=request.optimization_applied,
        optimization_summary=(
            checks.json_object(request.optimization_summary, "optimization_summary")
            if has_summary
            else None
        ),
        learned_fusion_context=(
            checks.json_object(request.learned_fusion_context, "learned_fusion_context")
            if request.HasField("learned_fusion_context")
            else None
        ),
        cached_at=(
            checks.non_negative_number(request.cached_at, "cached_at")
            if request.HasField("cached_at")
            else None
        ),
        total_time_ms=checks.non_negative_number(request.total_time_ms, "total_time_ms"),
        credits_used=checks.non_negative_number(request.credits_used, "credits_used"),
        stages_completed=checks.non_negative_count(request.stages_completed, "stages_completed"),
    )


def complete(row: ExecutionRow, completion: Completion, now_us: int) -> ExecutionRow:
    if row.status == "completed" and _completed_with(row, completion):
        return row  # a retry of the call that completed it
    detail = _in_flight(row)
    _set_stages_completed(detail, completion.stages_completed or detail.total_stages)
    detail.documents.json = _documents_json(completion)
    detail.pagination.CopyFrom(completion.pagination)
    detail.budget.CopyFrom(completion.budget)
    detail.warnings.extend(completion.warnings)
    detail.optimization_applied = completion.optimization_applied
    if completion.optimization_summary is not None:
        detail.optimization_summary.CopyFrom(completion.optimization_summary)
    if completion.learned_fusion_context is not None:
        detail.learned_fusion_context.CopyFrom(completion.learned_fusion_context)
    if completion.cached_at is not None:
        detail.cached_at = completion.cached_at
    detail.stage_statistics.total_time_ms = completion.total_time_ms
    detail.stage_statistics.credits_used = completion.credits_used
    _finish(detail, execution_pb2.EXECUTION_STATUS_COMPLETED, now_us)
    summary = summary_of(row)
    return to_row(
        detail,
        namespace_id=row.namespace_id,
        request_id=row.request_id,
        total_processed=summary.total_processed,
        total_returned=len(completion.documents),
        writer_fields=summary,
    )


def prepare_failure(request: execution_writer_service_pb2.FailExecutionRequest) -> Failure:
    return Failure(
        error=checks.text(request.error, "error", max_length=MAX_ERROR),
        total_time_ms=checks.non_negative_number(request.total_time_ms, "total_time_ms"),
    )


def fail(row: ExecutionRow, failure: Failure, now_us: int) -> ExecutionRow:
    if row.status == "failed" and _failed_with(row, failure):
        return row  # a retry of the call that failed it
    detail = _in_flight(row)
    detail.error = failure.error
    detail.stage_statistics.total_time_ms = failure.total_time_ms
    _finish(detail, execution_pb2.EXECUTION_STATUS_FAILED, now_us)
    summary = summary_of(row)
    return to_row(
        detail,
        namespace_id=row.namespace_id,
        request_id=row.request_id,
        total_processed=summary.total_processed,
        total_returned=0,  # a failed execution returns no documents
        writer_fields=summary,
    )


def _completed_with(row: ExecutionRow, completion: Completion) -> bool:
    """Whether the stored, completed execution is what `completion` would have made of it."""
    detail = execution_pb2.ExecutionDetail.FromString(row.detail)
    return (
        detail.documents.json == _documents_json(completion)
        and detail.pagination == completion.pagination
        and detail.budget == completion.budget
        and tuple(detail.warnings) == completion.warnings
        and detail.optimization_applied == completion.optimization_applied
        and _optional(detail, "optimization_summary") == completion.optimization_summary
        and _optional(detail, "learned_fusion_context") == completion.learned_fusion_context
        and (detail.cached_at if detail.HasField("cached_at") else None) == completion.cached_at
        and detail.stage_statistics.total_time_ms == completion.total_time_ms
        and detail.stage_statistics.credits_used == completion.credits_used
        and detail.stages_completed == (completion.stages_completed or detail.total_stages)
    )


def _documents_json(completion: Completion) -> str:
    """The documents as one JSON array text (each is already validated and compact)."""
    return "[" + ",".join([document.json for document in completion.documents]) + "]"


def _failed_with(row: ExecutionRow, failure: Failure) -> bool:
    detail = execution_pb2.ExecutionDetail.FromString(row.detail)
    return (
        detail.error == failure.error
        and detail.stage_statistics.total_time_ms == failure.total_time_ms
    )


def _optional(detail: execution_pb2.ExecutionDetail, field: str) -> raw_json_pb2.RawJson | None:
    return getattr(detail, field) if detail.HasField(field) else None  # type: ignore[arg-type]


def _in_flight(row: ExecutionRow) -> execution_pb2.ExecutionDetail:
    if row.status in TERMINAL:
        raise ExecutionTerminalError(row.execution_id, row.status)
    detail = execution_pb2.ExecutionDetail.FromString(row.detail)
    assert STATUS_NAMES[detail.status] == row.status
    return detail


def _set_stages_completed(detail: execution_pb2.ExecutionDetail, value: int) -> None:
    if value > detail.total_stages:
        raise InvalidArgumentError(
            "stages_completed",
            f"stages_completed ({value}) must not exceed total_stages ({detail.total_stages})",
        )
    if value < detail.stages_completed:
        raise InvalidArgumentError(
            "stages_completed",
            f"stages_completed must not decrease (was {detail.stages_completed}, got {value})",
        )
    detail.stages_completed = value


def _finish(
    detail: execution_pb2.ExecutionDetail,
    status: execution_pb2.ExecutionStatus.ValueType,
    now_us: int,
) -> None:
    detail.status = status
    # A clock step backwards must not produce completed_at < created_at.
    detail.completed_at.FromMicroseconds(max(now_us, detail.created_at.ToMicroseconds()))
    detail.ClearField("current_stage")


def _object_or_empty(
    request: execution_writer_service_pb2.CompleteExecutionRequest, field: str
) -> raw_json_pb2.RawJson:
    if request.HasField(field):  # type: ignore[arg-type]
        return checks.json_object(getattr(request, field), field)
    return raw_json_pb2.RawJson(json=EMPTY_OBJECT)
