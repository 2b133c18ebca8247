"""ListExecutions as the listing contract says (docs/CONTRACT.md, "List executions"):
every summary has numbers for duration and credits, every page an integer total."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2

from tests.service.rpc.test_reads import list_page
from tests.service.rpc.test_writes import Writer, stats
from tests.support.grpc_calls import failure
from tests.support.running_service import RunningService, Stubs


@pytest.fixture
def writer(running_service: RunningService, service_stubs: Stubs) -> Writer:
    return Writer(running_service, service_stubs)


def by_id(page: service_pb2.ListExecutionsResponse) -> dict[str, execution_pb2.ExecutionSummary]:
    return {summary.execution_id: summary for summary in page.results}


@pytest.mark.asyncio
async def test_in_flight_summaries_carry_the_time_and_credits_so_far(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    before_us = time.time_ns() // 1000
    page = await list_page(running_service, service_stubs)
    after_us = time.time_ns() // 1000
    summaries = by_id(page)
    for name in ("pending", "processing"):
        summary = summaries[running_service.demo.executions[name]]
        assert not summary.HasField("completed_at")
        assert summary.HasField("duration_ms")
        created_us = summary.created_at.ToMicroseconds()
        # The time since it began, as of the read.
        assert (before_us - created_us) / 1000 <= summary.duration_ms
        assert summary.duration_ms <= (after_us - created_us) / 1000
        assert summary.credits_used >= 0
    for name in ("completed_10", "failed"):
        summary = summaries[running_service.demo.executions[name]]
        assert summary.HasField("completed_at")
        assert summary.duration_ms >= 0


@pytest.mark.asyncio
async def test_total_is_an_integer_on_every_page(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    everything = len(running_service.demo.executions)
    for offset, limit in ((0, 2), (2, 2), (4, 2), (0, 20)):
        page = await list_page(running_service, service_stubs, offset=offset, limit=limit)
        assert page.pagination.HasField("total")
        has_next = offset + limit < everything
        assert page.pagination.has_next is has_next
        # Without include_total: what this page proves exists (a lower bound).
        assert page.pagination.total == offset + len(page.results) + (1 if has_next else 0)
        assert page.pagination.total <= everything
        exact = await list_page(
            running_service, service_stubs, offset=offset, limit=limit, include_total=True
        )
        assert exact.pagination.total == everything


@pytest.mark.asyncio
async def test_running_filter_lists_every_execution_in_flight(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    page = await list_page(
        running_service,
        service_stubs,
        query=service_pb2.ExecutionQuery(status=execution_pb2.EXECUTION_STATUS_RUNNING),
        include_total=True,
    )
    demo = running_service.demo.executions
    assert set(by_id(page)) == {demo["pending"], demo["processing"]}
    assert page.pagination.total == 2
    assert {summary.status for summary in page.results} == {
        execution_pb2.EXECUTION_STATUS_PENDING,
        execution_pb2.EXECUTION_STATUS_PROCESSING,
    }


@pytest.mark.asyncio
async def test_writer_fields_and_cache_hit_rate_reach_the_summary(
    writer: Writer, running_service: RunningService, service_stubs: Stubs
) -> None:
    started = await writer.calls.writer.StartExecution(
        writer_pb2.StartExecutionRequest(
            retriever_id=writer.retriever,
            total_stages=3,
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
            inputs_hash="sha256:abc",
            query_summary="red shoes under $50",
        ),
        metadata=writer.metadata,
    )
    execution_id = started.execution.execution_id

    async def summary() -> execution_pb2.ExecutionSummary:
        return by_id(await list_page(running_service, service_stubs, limit=100))[execution_id]

    fresh = await summary()
    assert not fresh.HasField("cache_hit_rate")  # no stage said anything about caching
    await writer.report(execution_id, stage_name="search", statistics=stats(10, 5, cache_hit=True))
    await writer.report(execution_id, stage_name="rerank", statistics=stats(5, 5, cache_hit=False))
    await writer.report(execution_id, stage_name="join", statistics=stats(5, 5))
    await writer.complete(execution_id, credits_used=1.5, total_time_ms=12.0)
    done = await summary()
    assert done.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert done.inputs_hash == "sha256:abc"
    assert done.query_summary == "red shoes under $50"
    assert done.cache_hit_rate == 0.5  # one hit among the two stages that said
    assert (done.credits_used, done.duration_ms) == (1.5, 12.0)
    assert (done.total_processed, done.total_returned) == (10, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "fields",
    [
        {"trace_id": ""},
        {"trace_id": "x" * 129},
        {"trace_id": "tr\u00e4ce"},
        {"inputs_hash": "a b\n"},
        {"query_summary": "x" * 1025},
        {"query_summary": "bell\x07"},
    ],
)
async def test_writer_summary_fields_are_bounded(writer: Writer, fields: dict[str, Any]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await writer.calls.writer.StartExecution(
            writer_pb2.StartExecutionRequest(retriever_id=writer.retriever, **fields),
            metadata=writer.metadata,
        )
    got = failure(raised.value)
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.metadata == {"field": next(iter(fields))}


@pytest.mark.asyncio
async def test_stages_keep_pipeline_order(writer: Writer) -> None:
    execution_id = (await writer.start(total_stages=4)).execution.execution_id
    pipeline = ["semantic_search", "filter", "attribute_join", "llm_rerank"]  # not sorted
    for name in [*pipeline, "filter"]:  # a stage reporting again keeps its place
        await writer.report(execution_id, stage_name=name, statistics=stats(10, 5))
    detail = await writer.get(execution_id)
    assert list(detail.stage_statistics.stages_order) == pipeline
    assert sorted(detail.stage_statistics.stages) == sorted(pipeline)
