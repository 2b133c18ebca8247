"""The write path over a real server: state machine, idempotent start, immutability, validation."""

from __future__ import annotations

import math
from typing import Any

import grpc
import orjson
import pytest
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from execgate.type.v1 import raw_json_pb2

from service import ids
from tests.support.grpc_calls import Failure, failure
from tests.support.running_service import RunningService, Stubs, auth

Status = execution_pb2.ExecutionStatus


def raw(value: Any) -> raw_json_pb2.RawJson:
    return raw_json_pb2.RawJson(json=orjson.dumps(value).decode())


def stats(input_count: int, output_count: int, **fields: Any) -> execution_pb2.StageStatistics:
    return execution_pb2.StageStatistics(
        input_count=input_count, output_count=output_count, duration_ms=5.0, **fields
    )


class Writer:
    """The write RPCs of one test, against the demo retriever (by name) with the demo key."""

    def __init__(self, service: RunningService, calls: Stubs) -> None:
        self.calls = calls
        self.retriever = service.demo.retriever.name
        self.metadata = auth(service.demo.api_key)

    async def start(
        self, total_stages: int = 3, request_id: str = ""
    ) -> writer_pb2.StartExecutionResponse:
        return await self.calls.writer.StartExecution(
            writer_pb2.StartExecutionRequest(
                retriever_id=self.retriever, total_stages=total_stages, request_id=request_id
            ),
            metadata=self.metadata,
        )

    async def report(self, execution_id: str, **fields: Any) -> execution_pb2.ExecutionDetail:
        fields.setdefault("stage_name", "feature_search")
        fields.setdefault("statistics", stats(100, 10))
        response = await self.calls.writer.ReportStageProgress(
            writer_pb2.ReportStageProgressRequest(
                retriever_id=self.retriever, execution_id=execution_id, **fields
            ),
            metadata=self.metadata,
        )
        return response.execution

    async def complete(self, execution_id: str, **fields: Any) -> execution_pb2.ExecutionDetail:
        response = await self.calls.writer.CompleteExecution(
            writer_pb2.CompleteExecutionRequest(
                retriever_id=self.retriever, execution_id=execution_id, **fields
            ),
            metadata=self.metadata,
        )
        return response.execution

    async def fail(self, execution_id: str, **fields: Any) -> execution_pb2.ExecutionDetail:
        fields.setdefault("error", "boom")
        response = await self.calls.writer.FailExecution(
            writer_pb2.FailExecutionRequest(
                retriever_id=self.retriever, execution_id=execution_id, **fields
            ),
            metadata=self.metadata,
        )
        return response.execution

    async def get(self, execution_id: str) -> execution_pb2.ExecutionDetail:
        return await self.calls.reader.GetExecution(
            service_pb2.GetExecutionRequest(retriever_id=self.retriever, execution_id=execution_id),
            metadata=self.metadata,
        )


@pytest.fixture
def writer(running_service: RunningService, service_stubs: Stubs) -> Writer:
    return Writer(running_service, service_stubs)


async def expect_failure(call: Any) -> Failure:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return failure(raised.value)


@pytest.mark.asyncio
async def test_start_progress_complete(writer: Writer, running_service: RunningService) -> None:
    started = await writer.start(total_stages=3)
    assert started.created
    execution = started.execution
    execution_id = execution.execution_id
    assert ids.is_execution_id(execution_id)
    assert execution.status == execution_pb2.EXECUTION_STATUS_PENDING
    assert execution.retriever_id == running_service.demo.retriever.id
    assert execution.HasField("created_at")
    assert not execution.HasField("completed_at")
    assert execution.pagination.json == execution.budget.json == "{}"
    assert execution.HasField("stage_statistics")

    # A writer's efficiency is ignored; the service computes output/input.
    first = await writer.report(
        execution_id,
        stage_name="feature_search",
        statistics=stats(200, 50, efficiency=0.99, metadata=raw({"top_k": 50, "index": "hnsw"})),
        current_stage="attribute_filter",
        stages_completed=1,
    )
    assert first.status == execution_pb2.EXECUTION_STATUS_PROCESSING
    assert first.current_stage == "attribute_filter"
    assert first.stages_completed == 1
    stage = first.stage_statistics.stages["feature_search"]
    assert stage.efficiency == 0.25
    assert stage.metadata.json == '{"top_k":50,"index":"hnsw"}'  # compact, re-serialised

    second = await writer.report(
        execution_id,
        stage_name="attribute_filter",
        statistics=stats(0, 0),
        current_stage="rerank",
        stages_completed=2,
    )
    assert second.stage_statistics.stages["attribute_filter"].efficiency == 0.0
    assert second.stage_statistics.stages["attribute_filter"].metadata.json == "{}"
    assert set(second.stage_statistics.stages) == {"feature_search", "attribute_filter"}

    completed = await writer.complete(
        execution_id,
        documents=[raw({"document_id": "d1", "score": 0.9}), raw({"document_id": "d2"})],
        pagination=raw({"has_next": False}),
        warnings=["slow filter"],
        total_time_ms=12.5,
        credits_used=0.25,
    )
    assert completed.status == execution_pb2.EXECUTION_STATUS_COMPLETED
    assert completed.HasField("completed_at")
    assert completed.completed_at.ToMicroseconds() >= completed.created_at.ToMicroseconds()
    assert not completed.HasField("current_stage")
    assert not completed.HasField("error")
    assert completed.stages_completed == 3  # defaults to total_stages
    assert completed.documents.json == '[{"document_id":"d1","score":0.9},{"document_id":"d2"}]'
    assert completed.budget.json == "{}"
    assert completed.stage_statistics.total_time_ms == 12.5
    assert completed.stage_statistics.credits_used == 0.25
    assert not completed.HasField("optimization_summary")
    assert await writer.get(execution_id) == completed

    listed = await writer.calls.reader.ListExecutions(
        service_pb2.ListExecutionsRequest(retriever_id=writer.retriever, limit=1),
        metadata=writer.metadata,
    )
    summary = listed.results[0]
    assert summary.execution_id == execution_id
    assert summary.total_processed == 200  # the first stage's input
    assert summary.total_returned == 2
    assert summary.duration_ms == 12.5
    assert summary.credits_used == 0.25


@pytest.mark.asyncio
async def test_fail_sets_error_and_completed_at(writer: Writer) -> None:
    execution_id = (await writer.start()).execution.execution_id
    await writer.report(execution_id, current_stage="rerank")
    failed = await writer.fail(execution_id, error="Collection not found", total_time_ms=3.0)
    assert failed.status == execution_pb2.EXECUTION_STATUS_FAILED
    assert failed.error == "Collection not found"
    assert failed.HasField("completed_at")
    assert not failed.HasField("current_stage")
    assert failed.stage_statistics.total_time_ms == 3.0
    assert failed.documents.json == "[]"


@pytest.mark.asyncio
async def test_complete_straight_from_pending_with_optional_fields(writer: Writer) -> None:
    execution_id = (await writer.start(total_stages=0)).execution.execution_id
    completed = await writer.complete(
        execution_id,
        optimization_applied=True,
        optimization_summary=raw({"rules_applied": ["push_down_filters"]}),
        learned_fusion_context=raw({"context_level": "global"}),
        cached_at=1_700_000_000.5,
        budget=raw({"credits_used": 1}),
    )
    assert completed.status == execution_pb2.EXECUTION_STATUS_COMPLETED
    assert completed.optimization_applied
    assert completed.optimization_summary.json == '{"rules_applied":["push_down_filters"]}'
    assert completed.learned_fusion_context.json == '{"context_level":"global"}'
    assert completed.cached_at == 1_700_000_000.5
    assert completed.stages_completed == 0


@pytest.mark.asyncio
async def test_start_is_idempotent_by_request_id(writer: Writer) -> None:
    first = await writer.start(request_id="run-42:attempt.1")
    again = await writer.start(request_id="run-42:attempt.1", total_stages=7)
    other = await writer.start(request_id="run-43")
    assert first.created
    assert not again.created
    assert other.created
    assert again.execution == first.execution
    assert other.execution.execution_id != first.execution.execution_id
    # Without a request id every call creates a new execution.
    assert (await writer.start()).execution.execution_id != (
        await writer.start()
    ).execution.execution_id


@pytest.mark.asyncio
@pytest.mark.parametrize("finish", ["complete", "fail"])
async def test_terminal_executions_are_immutable(writer: Writer, finish: str) -> None:
    execution_id = (await writer.start()).execution.execution_id
    if finish == "complete":
        final = await writer.complete(execution_id)
        status = "completed"
    else:
        final = await writer.fail(execution_id)
        status = "failed"
    for attempt in (
        writer.report(execution_id),
        writer.complete(execution_id, warnings=["a different completion"]),
        writer.fail(execution_id, error="a different failure"),
        writer.fail(execution_id) if finish == "complete" else writer.complete(execution_id),
    ):
        got = await expect_failure(attempt)
        assert got.code is grpc.StatusCode.FAILED_PRECONDITION
        assert got.reason == "EXECUTION_TERMINAL"
        assert got.metadata == {"resource": "execution", "id": execution_id, "status": status}
    assert await writer.get(execution_id) == final


@pytest.mark.asyncio
async def test_an_identical_retry_of_complete_or_fail_answers_the_stored_execution(
    writer: Writer,
) -> None:
    # The first attempt committed but its answer was lost; gRPC retried the call.
    completed_id = (await writer.start(total_stages=1)).execution.execution_id
    completion = {
        "documents": [raw({"document_id": "doc_1", "score": 0.5})],
        "budget": raw({"credits_used": 0.5}),
        "warnings": ["unindexed field"],
        "cached_at": 1795000000.5,
        "total_time_ms": 12.5,
        "credits_used": 0.5,
    }
    first = await writer.complete(completed_id, **completion)
    assert await writer.complete(completed_id, **completion) == first
    assert await writer.get(completed_id) == first

    failed_id = (await writer.start()).execution.execution_id
    failed = await writer.fail(failed_id, error="index offline", total_time_ms=3.0)
    assert await writer.fail(failed_id, error="index offline", total_time_ms=3.0) == failed
    got = await expect_failure(writer.fail(failed_id, error="index offline", total_time_ms=4.0))
    assert got.reason == "EXECUTION_TERMINAL"


@pytest.mark.asyncio
async def test_unknown_execution_is_not_found(writer: Writer) -> None:
    missing = ids.new_execution_id()
    for attempt in (writer.report(missing), writer.complete(missing), writer.fail(missing)):
        got = await expect_failure(attempt)
        assert got.code is grpc.StatusCode.NOT_FOUND
        assert got.reason == "EXECUTION_NOT_FOUND"
        assert got.metadata == {"resource": "execution", "id": missing}


@pytest.mark.asyncio
async def test_malformed_execution_id_is_invalid_execution_id(writer: Writer) -> None:
    for bad in ("", "exec_", "exec_ab-c", "ret_abc", "exec_" + "a" * 65):
        got = await expect_failure(writer.report(bad))
        assert got.code is grpc.StatusCode.INVALID_ARGUMENT
        assert got.reason == "INVALID_EXECUTION_ID"
        assert got.metadata == {"field": "execution_id"}


@pytest.mark.asyncio
async def test_unknown_retriever_is_not_found(writer: Writer) -> None:
    writer.retriever = "no-such-retriever"
    got = await expect_failure(writer.start())
    assert got.code is grpc.StatusCode.NOT_FOUND
    assert got.reason == "RETRIEVER_NOT_FOUND"
    assert got.metadata == {"resource": "retriever", "id": "no-such-retriever"}


# Each case: the write, its arguments, and the field the error must name.
REPORT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("negative input", {"statistics": stats(-1, 0)}, "statistics.input_count"),
    ("negative output", {"statistics": stats(1, -5)}, "statistics.output_count"),
    (
        "NaN duration",
        {"statistics": execution_pb2.StageStatistics(duration_ms=math.nan)},
        "statistics.duration_ms",
    ),
    (
        "negative duration",
        {"statistics": execution_pb2.StageStatistics(duration_ms=-1)},
        "statistics.duration_ms",
    ),
    ("negative llm calls", {"statistics": stats(1, 1, llm_calls=-1)}, "statistics.llm_calls"),
    ("negative tokens", {"statistics": stats(1, 1, tokens_used=-3)}, "statistics.tokens_used"),
    (
        "cached_at without cache hit",
        {"statistics": stats(1, 1, cached_at=1.0)},
        "statistics.cached_at",
    ),
    (
        "infinite cached_at",
        {"statistics": stats(1, 1, cache_hit=True, cached_at=math.inf)},
        "statistics.cached_at",
    ),
    (
        "metadata not JSON",
        {"statistics": stats(1, 1, metadata=raw_json_pb2.RawJson(json="{oops"))},
        "statistics.metadata",
    ),
    ("metadata an array", {"statistics": stats(1, 1, metadata=raw([1]))}, "statistics.metadata"),
    (
        "metadata empty text",
        {"statistics": stats(1, 1, metadata=raw_json_pb2.RawJson())},
        "statistics.metadata",
    ),
    ("no statistics", {"statistics": None}, "statistics"),
    ("no stage name", {"stage_name": ""}, "stage_name"),
    ("stage name too long", {"stage_name": "s" * 129}, "stage_name"),
    ("control characters", {"current_stage": "re\x00rank"}, "current_stage"),
    ("stages over total", {"stages_completed": 4}, "stages_completed"),
    ("negative stages", {"stages_completed": -1}, "stages_completed"),
]

COMPLETE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("document not JSON", {"documents": [raw({}), raw_json_pb2.RawJson(json="[")]}, "documents[1]"),
    ("document a string", {"documents": [raw("text")]}, "documents[0]"),
    ("document NaN", {"documents": [raw_json_pb2.RawJson(json='{"a": NaN}')]}, "documents[0]"),
    ("pagination a list", {"pagination": raw([])}, "pagination"),
    ("budget not JSON", {"budget": raw_json_pb2.RawJson(json="{'a': 1}")}, "budget"),
    ("summary without applied", {"optimization_summary": raw({})}, "optimization_summary"),
    ("applied without summary", {"optimization_applied": True}, "optimization_summary"),
    ("fusion a number", {"learned_fusion_context": raw(3)}, "learned_fusion_context"),
    ("negative cached_at", {"cached_at": -1.0}, "cached_at"),
    ("negative time", {"total_time_ms": -0.5}, "total_time_ms"),
    ("infinite credits", {"credits_used": math.inf}, "credits_used"),
    ("stages over total", {"stages_completed": 9}, "stages_completed"),
    ("too many warnings", {"warnings": ["w"] * 101}, "warnings"),
    ("warning too long", {"warnings": ["ok", "w" * 1025]}, "warnings[1]"),
]

FAIL_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no error", {"error": ""}, "error"),
    ("error too long", {"error": "e" * 4097}, "error"),
    ("negative time", {"total_time_ms": -1.0}, "total_time_ms"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("case", "fields", "field"), REPORT_CASES, ids=[c[0] for c in REPORT_CASES]
)
async def test_report_validation(
    writer: Writer, case: str, fields: dict[str, Any], field: str
) -> None:
    execution_id = (await writer.start(total_stages=3)).execution.execution_id
    fields = {name: value for name, value in fields.items() if value is not None}
    if "statistics" not in fields and field == "statistics":
        request = writer_pb2.ReportStageProgressRequest(
            retriever_id=writer.retriever, execution_id=execution_id, stage_name="s"
        )
        got = await expect_failure(
            writer.calls.writer.ReportStageProgress(request, metadata=writer.metadata)
        )
    else:
        got = await expect_failure(writer.report(execution_id, **fields))
    assert_invalid(got, field)
    # A rejected write changes nothing.
    assert (await writer.get(execution_id)).status == execution_pb2.EXECUTION_STATUS_PENDING


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("case", "fields", "field"), COMPLETE_CASES, ids=[c[0] for c in COMPLETE_CASES]
)
async def test_complete_validation(
    writer: Writer, case: str, fields: dict[str, Any], field: str
) -> None:
    execution_id = (await writer.start(total_stages=3)).execution.execution_id
    assert_invalid(await expect_failure(writer.complete(execution_id, **fields)), field)
    assert (await writer.get(execution_id)).status == execution_pb2.EXECUTION_STATUS_PENDING


@pytest.mark.asyncio
@pytest.mark.parametrize(("case", "fields", "field"), FAIL_CASES, ids=[c[0] for c in FAIL_CASES])
async def test_fail_validation(
    writer: Writer, case: str, fields: dict[str, Any], field: str
) -> None:
    execution_id = (await writer.start()).execution.execution_id
    assert_invalid(await expect_failure(writer.fail(execution_id, **fields)), field)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"total_stages": 1001}, "total_stages"),
        ({"total_stages": -1}, "total_stages"),
        ({"request_id": "has space"}, "request_id"),
        ({"request_id": "r" * 129}, "request_id"),
    ],
)
async def test_start_validation(writer: Writer, fields: dict[str, Any], field: str) -> None:
    assert_invalid(await expect_failure(writer.start(**fields)), field)


@pytest.mark.asyncio
async def test_stages_completed_never_decreases(writer: Writer) -> None:
    execution_id = (await writer.start(total_stages=3)).execution.execution_id
    await writer.report(execution_id, stages_completed=2)
    got = await expect_failure(writer.report(execution_id, stage_name="rerank", stages_completed=1))
    assert_invalid(got, "stages_completed")
    assert "decrease" in got.message
    got = await expect_failure(writer.complete(execution_id, stages_completed=1))
    assert_invalid(got, "stages_completed")


def assert_invalid(got: Failure, field: str) -> None:
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.reason == "INVALID_ARGUMENT"
    assert got.domain == "execgate"
    assert got.metadata == {"field": field}
    assert field.split("[")[0] in got.message
