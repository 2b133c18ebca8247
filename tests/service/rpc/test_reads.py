"""GetExecution and ListExecutions over a real server, on the demo data."""

from __future__ import annotations

import base64
import json
from typing import Any

import grpc
import orjson
import pytest
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from service import ids
from tests.support.grpc_calls import failure
from tests.support.running_service import RunningService, Stubs, auth

GET_METHOD = "/execgate.retrievers.v1.ExecutionService/GetExecution"
EXPECTED_STATUS = {
    "completed_10": execution_pb2.EXECUTION_STATUS_COMPLETED,
    "completed_1000": execution_pb2.EXECUTION_STATUS_COMPLETED,
    "failed": execution_pb2.EXECUTION_STATUS_FAILED,
    "processing": execution_pb2.EXECUTION_STATUS_PROCESSING,
    "pending": execution_pb2.EXECUTION_STATUS_PENDING,
}


async def get(
    service: RunningService, calls: Stubs, execution_id: str, **fields: Any
) -> tuple[execution_pb2.ExecutionDetail, dict[str, str]]:
    call = calls.reader.GetExecution(
        service_pb2.GetExecutionRequest(
            retriever_id=service.demo.retriever.name, execution_id=execution_id, **fields
        ),
        metadata=auth(service.demo.api_key),
    )
    detail = await call
    trailers = {key: str(value) for key, value in await call.trailing_metadata() or ()}
    return detail, trailers


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(EXPECTED_STATUS))
async def test_get_returns_the_stored_bytes_unchanged(
    running_service: RunningService, grpc_channel: grpc.aio.Channel, name: str
) -> None:
    demo = running_service.demo
    execution_id = demo.executions[name]
    raw_get: grpc.aio.UnaryUnaryMultiCallable[service_pb2.GetExecutionRequest, bytes]
    raw_get = grpc_channel.unary_unary(
        GET_METHOD, request_serializer=service_pb2.GetExecutionRequest.SerializeToString
    )
    body = await raw_get(
        service_pb2.GetExecutionRequest(retriever_id=demo.retriever.id, execution_id=execution_id),
        metadata=auth(demo.api_key),
    )
    row = await running_service.store.get_execution(
        demo.namespace.id, demo.retriever.id, execution_id
    )
    assert row is not None
    assert body == row.detail


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(EXPECTED_STATUS))
async def test_demo_executions_keep_the_contract_invariants(
    running_service: RunningService, service_stubs: Stubs, name: str
) -> None:
    detail, trailers = await get(
        running_service, service_stubs, running_service.demo.executions[name]
    )
    status = EXPECTED_STATUS[name]
    terminal = status in (
        execution_pb2.EXECUTION_STATUS_COMPLETED,
        execution_pb2.EXECUTION_STATUS_FAILED,
    )
    assert detail.status == status
    assert detail.retriever_id == running_service.demo.retriever.id
    assert detail.HasField("created_at")
    assert detail.HasField("completed_at") == terminal
    assert detail.HasField("error") == (status == execution_pb2.EXECUTION_STATUS_FAILED)
    assert not (terminal and detail.HasField("current_stage"))
    assert detail.stages_completed <= detail.total_stages
    for raw_json in (detail.pagination, detail.budget):
        assert isinstance(orjson.loads(raw_json.json), dict)
    assert detail.HasField("stage_statistics")
    for stage in detail.stage_statistics.stages.values():
        expected = stage.output_count / stage.input_count if stage.input_count else 0.0
        assert stage.efficiency == expected
        assert isinstance(orjson.loads(stage.metadata.json), dict)
    assert detail.HasField("optimization_summary") == detail.optimization_applied
    assert not detail.HasField("results")
    assert trailers["cache-control"] == ("private" if terminal else "no-store")
    assert trailers["etag"].startswith('"')
    assert trailers["etag"].endswith('"')


@pytest.mark.asyncio
async def test_demo_document_counts(running_service: RunningService, service_stubs: Stubs) -> None:
    executions = running_service.demo.executions
    ten, _ = await get(running_service, service_stubs, executions["completed_10"])
    thousand, _ = await get(running_service, service_stubs, executions["completed_1000"])
    assert len(orjson.loads(ten.documents.json)) == 10
    documents = orjson.loads(thousand.documents.json)
    assert len(documents) == 1000
    document = documents[0]
    assert {"document_id", "score", "payload"} <= set(document)
    assert set(ten.stage_statistics.stages) == {"feature_search", "attribute_filter", "rerank"}


@pytest.mark.asyncio
async def test_legacy_results_copy_documents_with_their_own_etag(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    execution_id = running_service.demo.executions["completed_10"]
    plain, plain_trailers = await get(running_service, service_stubs, execution_id)
    legacy, legacy_trailers = await get(
        running_service, service_stubs, execution_id, include_legacy_results=True
    )
    assert legacy.HasField("results")
    assert legacy.results.json == legacy.documents.json == plain.documents.json
    assert legacy_trailers["etag"] != plain_trailers["etag"]
    assert legacy_trailers["cache-control"] == "private"
    legacy.ClearField("results")
    assert legacy == plain


@pytest.mark.asyncio
async def test_legacy_results_are_set_even_without_documents(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    pending, _ = await get(
        running_service,
        service_stubs,
        running_service.demo.executions["pending"],
        include_legacy_results=True,
    )
    assert pending.HasField("results")
    assert pending.results.json == pending.documents.json == "[]"


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", ["", "nope", "exec_", "exec_a/b", "EXEC_abc", "exec_" + "x" * 65])
async def test_malformed_execution_id(
    running_service: RunningService, service_stubs: Stubs, bad: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await get(running_service, service_stubs, bad)
    got = failure(raised.value)
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.reason == "INVALID_EXECUTION_ID"
    assert got.metadata == {"field": "execution_id"}


@pytest.mark.asyncio
async def test_missing_execution_and_retriever(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    missing = ids.new_execution_id()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await get(running_service, service_stubs, missing)
    got = failure(raised.value)
    assert got.code is grpc.StatusCode.NOT_FOUND
    assert got.reason == "EXECUTION_NOT_FOUND"
    assert got.message == f"Execution {missing} not found"
    assert got.metadata == {"resource": "execution", "id": missing}

    demo = running_service.demo
    for retriever in ("", "x" * 129):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await service_stubs.reader.GetExecution(
                service_pb2.GetExecutionRequest(
                    retriever_id=retriever, execution_id=demo.executions["pending"]
                ),
                metadata=auth(demo.api_key),
            )
        assert failure(raised.value).metadata == {"field": "retriever_id"}
    for retriever in ("unknown-retriever", "bad name!", ids.new_retriever_id()):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await service_stubs.reader.GetExecution(
                service_pb2.GetExecutionRequest(
                    retriever_id=retriever, execution_id=demo.executions["pending"]
                ),
                metadata=auth(demo.api_key),
            )
        got = failure(raised.value)
        assert got.reason == "RETRIEVER_NOT_FOUND"
        assert got.metadata == {"resource": "retriever", "id": retriever}


# --- ListExecutions ---------------------------------------------------------------


async def list_page(
    service: RunningService, calls: Stubs, **fields: Any
) -> service_pb2.ListExecutionsResponse:
    fields.setdefault("retriever_id", service.demo.retriever.name)
    return await calls.reader.ListExecutions(
        service_pb2.ListExecutionsRequest(**fields), metadata=auth(service.demo.api_key)
    )


@pytest.mark.asyncio
async def test_list_defaults_newest_first(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    page = await list_page(running_service, service_stubs)
    created = [summary.created_at.ToMicroseconds() for summary in page.results]
    assert created == sorted(created, reverse=True)
    assert {s.execution_id for s in page.results} == set(running_service.demo.executions.values())
    assert page.pagination.limit == 20
    assert page.pagination.offset == 0
    assert not page.pagination.has_next
    assert not page.pagination.HasField("next_cursor")
    assert page.pagination.total == len(page.results)  # a lower bound: no count was asked
    by_id = {s.execution_id: s for s in page.results}
    thousand = by_id[running_service.demo.executions["completed_1000"]]
    assert thousand.total_returned == 1000
    assert thousand.total_processed == 125_000
    assert thousand.HasField("duration_ms")
    pending = by_id[running_service.demo.executions["pending"]]
    assert not pending.HasField("completed_at")
    assert pending.duration_ms >= 0  # the time so far


@pytest.mark.asyncio
async def test_list_pages_by_offset_and_by_cursor(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    everything = [s.execution_id for s in (await list_page(running_service, service_stubs)).results]
    second = await list_page(running_service, service_stubs, limit=2, offset=2, include_total=True)
    assert [s.execution_id for s in second.results] == everything[2:4]
    assert second.pagination.total == 5
    assert second.pagination.offset == 2
    assert second.pagination.has_next

    seen: list[str] = []
    cursor = ""
    for _ in range(5):
        page = await list_page(running_service, service_stubs, limit=2, cursor=cursor)
        seen += [s.execution_id for s in page.results]
        assert page.pagination.offset == 0
        if not page.pagination.has_next:
            assert not page.pagination.HasField("next_cursor")
            break
        cursor = page.pagination.next_cursor
    assert seen == everything


@pytest.mark.asyncio
async def test_list_filters_and_sorts(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    completed = await list_page(
        running_service,
        service_stubs,
        query=service_pb2.ExecutionQuery(status=execution_pb2.EXECUTION_STATUS_COMPLETED),
        include_total=True,
    )
    assert {s.execution_id for s in completed.results} == {
        running_service.demo.executions["completed_10"],
        running_service.demo.executions["completed_1000"],
    }
    assert completed.pagination.total == 2

    everything = (await list_page(running_service, service_stubs)).results
    middle = sorted(s.created_at.ToMicroseconds() for s in everything)[2]
    after = Timestamp()
    after.FromMicroseconds(middle)
    newer = await list_page(
        running_service,
        service_stubs,
        query=service_pb2.ExecutionQuery(filters=service_pb2.ExecutionFilters(created_after=after)),
    )
    assert len(newer.results) == 3
    older = await list_page(
        running_service,
        service_stubs,
        query=service_pb2.ExecutionQuery(
            filters=service_pb2.ExecutionFilters(created_before=after)
        ),
    )
    assert len(older.results) == 2

    by_credits = await list_page(
        running_service,
        service_stubs,
        query=service_pb2.ExecutionQuery(
            sorts=[
                service_pb2.ExecutionSort(
                    field=service_pb2.EXECUTION_SORT_FIELD_CREDITS_USED,
                    direction=service_pb2.SORT_DIRECTION_ASC,
                )
            ]
        ),
    )
    credits = [s.credits_used for s in by_credits.results]
    assert credits == sorted(credits)
    assert credits[-1] == 4.0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"limit": 1001}, "limit"),
        ({"limit": -1}, "limit"),
        ({"offset": 10_001}, "offset"),
        ({"offset": -1}, "offset"),
        ({"query": service_pb2.ExecutionQuery(status=9)}, "query.status"),  # type: ignore[arg-type]
        (
            {"query": service_pb2.ExecutionQuery(sorts=[service_pb2.ExecutionSort(field=42)])},  # type: ignore[arg-type]
            "query.sorts[0].field",
        ),
        (
            {
                "query": service_pb2.ExecutionQuery(
                    sorts=[
                        service_pb2.ExecutionSort(
                            field=service_pb2.EXECUTION_SORT_FIELD_CREATED_AT
                        ),
                        service_pb2.ExecutionSort(
                            field=service_pb2.EXECUTION_SORT_FIELD_UNSPECIFIED
                        ),
                    ]
                )
            },
            "query.sorts[1].field",
        ),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": "eyJmIjoxfQ"}, "cursor"),  # valid base64 and JSON, not our shape
    ],
)
async def test_list_rejects_bad_parameters(
    running_service: RunningService, service_stubs: Stubs, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await list_page(running_service, service_stubs, **fields)
    got = failure(raised.value)
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.metadata == {"field": field}


@pytest.mark.asyncio
async def test_cursor_of_another_query_is_rejected(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    first = await list_page(running_service, service_stubs, limit=1)
    cursor = first.pagination.next_cursor
    assert cursor
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await list_page(
            running_service,
            service_stubs,
            limit=1,
            cursor=cursor,
            query=service_pb2.ExecutionQuery(status=execution_pb2.EXECUTION_STATUS_COMPLETED),
        )
    got = failure(raised.value)
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.reason == "INVALID_CURSOR"
    # The same cursor with its own query works.
    second = await list_page(running_service, service_stubs, limit=1, cursor=cursor)
    assert second.results[0].execution_id != first.results[0].execution_id


@pytest.mark.asyncio
@pytest.mark.parametrize("value", [2**63, 2**64 - 1, -(2**63) - 1])
async def test_cursor_position_beyond_64_bits_is_invalid_not_internal(
    running_service: RunningService, service_stubs: Stubs, value: int
) -> None:
    first = await list_page(running_service, service_stubs, limit=1)
    padded = first.pagination.next_cursor + "=" * (-len(first.pagination.next_cursor) % 4)
    payload = orjson.loads(base64.urlsafe_b64decode(padded))
    payload["a"][0] = value  # the query's own fingerprint, an impossible created_at
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await list_page(running_service, service_stubs, limit=1, cursor=forged)
    got = failure(raised.value)
    assert got.code is grpc.StatusCode.INVALID_ARGUMENT
    assert got.reason == "INVALID_CURSOR"
