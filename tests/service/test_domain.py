"""Pure parts of the service: IDs, wire splicing, error mapping, cursors, the records."""

from __future__ import annotations

import base64

import grpc
import orjson
import pytest
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from service import ids
from service.errors import (
    ExecutionTerminalError,
    InvalidArgumentError,
    NotFoundError,
    grpc_failure,
    internal_failure,
)
from service.executions import lifecycle
from service.executions.listing import build_listing, encode_cursor
from service.executions.records import STATUS_VALUES, etag_of, to_row
from service.rpc.wire import embedded, serialize_response, true_bool
from service.store.protocol import ExecutionRow, SortKey
from service.ttl_cache import TtlCache

NOW_US = 1_790_000_000_000_000


def test_new_ids_are_well_formed_and_distinct() -> None:
    made = {ids.new_execution_id() for _ in range(1000)}
    assert len(made) == 1000
    assert all(ids.is_execution_id(value) for value in made)
    assert ids.is_namespace_id(ids.new_namespace_id())
    assert ids.is_retriever_id(ids.new_retriever_id())
    assert ids.new_api_key_id().startswith("key_")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("exec_abc123", True),
        ("exec_" + "a" * 64, True),
        ("exec_" + "a" * 65, False),
        ("exec_", False),
        ("exec_ab_c", False),
        ("exec_ab c", False),
        ("exec_é", False),
        ("xexec_abc", False),
        ("exec_abc\n", False),
    ],
)
def test_execution_id_validation(value: str, valid: bool) -> None:
    assert ids.is_execution_id(value) is valid


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("product-search", True),
        ("v1.2_final", True),
        ("ret_abc", False),  # shaped like an ID
        ("ns_demo", False),
        ("-leading", False),
        ("", False),
        ("a" * 64, False),
        ("with space", False),
    ],
)
def test_name_validation(name: str, valid: bool) -> None:
    assert ids.is_valid_name(name) is valid


def test_spliced_fields_parse_like_serialized_messages() -> None:
    detail = execution_pb2.ExecutionDetail(execution_id="exec_a", warnings=["w" * 300])
    spliced = embedded(1, detail.SerializeToString()) + true_bool(2)
    parsed = writer_pb2.StartExecutionResponse.FromString(spliced)
    assert parsed == writer_pb2.StartExecutionResponse(execution=detail, created=True)
    assert serialize_response(spliced) is spliced
    assert serialize_response(parsed) == parsed.SerializeToString()


def test_error_mapping_carries_error_info() -> None:
    failure = grpc_failure(NotFoundError("execution", "exec_x"))
    assert failure.code is grpc.StatusCode.NOT_FOUND
    ((key, value),) = failure.trailing_metadata
    assert key == "grpc-status-details-bin"
    assert isinstance(value, bytes)
    status = status_pb2.Status.FromString(value)
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("EXECUTION_NOT_FOUND", "execgate")
    assert dict(info.metadata) == {"resource": "execution", "id": "exec_x"}

    terminal = grpc_failure(ExecutionTerminalError("exec_x", "failed"))
    assert terminal.code is grpc.StatusCode.FAILED_PRECONDITION
    internal = internal_failure()
    assert internal.code is grpc.StatusCode.INTERNAL
    assert internal.message == "Internal error"


def test_ttl_cache_expires_and_never_stores_with_zero_ttl() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_seconds=-1)
    cache.put("a", 1)
    assert cache.get("a") is None
    live: TtlCache[str, int] = TtlCache(ttl_seconds=60, max_entries=2)
    live.put("a", 1)
    live.put("b", 2)
    assert live.get("a") == 1
    live.put("c", 3)  # full: starts over rather than growing
    assert live.get("a") is None
    assert live.get("c") == 3


# --- listing ----------------------------------------------------------------------


def listing_request(**fields: object) -> service_pb2.ListExecutionsRequest:
    return service_pb2.ListExecutionsRequest(retriever_id="r", **fields)  # type: ignore[arg-type]


def test_listing_defaults() -> None:
    listing = build_listing(listing_request(), namespace_id="ns_a", retriever_id="ret_a")
    query = listing.query
    assert query.limit == 20
    assert query.offset == 0
    assert query.sort == (SortKey("created_at", descending=True),)
    assert query.status is None
    assert query.after is None


def test_cursor_round_trip_and_scope() -> None:
    listing = build_listing(listing_request(offset=40), namespace_id="ns_a", retriever_id="ret_a")
    cursor = encode_cursor(listing, (NOW_US, "exec_last"))
    assert "=" not in cursor
    resumed = build_listing(
        listing_request(cursor=cursor, offset=40), namespace_id="ns_a", retriever_id="ret_a"
    )
    assert resumed.query.after == (NOW_US, "exec_last")
    assert resumed.query.offset == 0  # a cursor replaces the offset
    for namespace_id, retriever_id in (("ns_b", "ret_a"), ("ns_a", "ret_b")):
        with pytest.raises(InvalidArgumentError) as raised:
            build_listing(
                listing_request(cursor=cursor), namespace_id=namespace_id, retriever_id=retriever_id
            )
        assert raised.value.reason == "INVALID_CURSOR"


@pytest.mark.parametrize(
    "payload",
    [
        {"f": "x", "a": [1, "exec_a"]},
        [1, 2],
        {"a": [1, "exec_a"]},
        {"f": None, "a": [True, "exec_a"]},
        {"f": None, "a": [1, "not-an-id"]},
        {"f": None, "a": [1, 2, "exec_a"]},
    ],
)
def test_forged_cursors_are_rejected(payload: object) -> None:
    listing = build_listing(listing_request(), namespace_id="ns_a", retriever_id="ret_a")
    if isinstance(payload, dict) and "f" in payload and payload["f"] is None:
        payload["f"] = listing.fingerprint
    cursor = base64.urlsafe_b64encode(orjson.dumps(payload)).decode()
    with pytest.raises(InvalidArgumentError) as raised:
        build_listing(listing_request(cursor=cursor), namespace_id="ns_a", retriever_id="ret_a")
    assert raised.value.metadata == {"field": "cursor"}


# --- the state machine's records --------------------------------------------------


def started(total_stages: int = 3) -> ExecutionRow:
    return lifecycle.start(
        writer_pb2.StartExecutionRequest(retriever_id="r", total_stages=total_stages),
        execution_id="exec_a",
        namespace_id="ns_a",
        retriever_id="ret_a",
        now_us=NOW_US,
    )


def report(row: ExecutionRow, stage: str, input_count: int, done: int) -> ExecutionRow:
    request = writer_pb2.ReportStageProgressRequest(
        stage_name=stage,
        statistics=execution_pb2.StageStatistics(input_count=input_count, output_count=1),
        stages_completed=done,
    )
    return lifecycle.report_stage(row, lifecycle.prepare_stage_report(request))


def summary_of(row: ExecutionRow) -> execution_pb2.ExecutionSummary:
    return execution_pb2.ExecutionSummary.FromString(row.summary)


def test_rows_carry_the_columns_the_store_needs() -> None:
    row = started()
    assert row.status == "pending"
    assert row.created_at_us == NOW_US
    assert row.completed_at_us is None
    assert row.duration_ms is None
    assert row.etag == etag_of(row.detail)
    completion = lifecycle.prepare_completion(
        writer_pb2.CompleteExecutionRequest(total_time_ms=9.5, credits_used=2.0)
    )
    done = lifecycle.complete(row, completion, NOW_US + 5)
    assert (done.status, done.completed_at_us, done.duration_ms) == ("completed", NOW_US + 5, 9.5)
    assert done.credits_used == 2.0
    assert done.etag != row.etag
    summary = summary_of(done)
    assert summary.duration_ms == 9.5
    assert summary.completed_at.ToMicroseconds() == NOW_US + 5


def test_completed_at_never_precedes_created_at() -> None:
    completion = lifecycle.prepare_completion(writer_pb2.CompleteExecutionRequest())
    done = lifecycle.complete(started(), completion, NOW_US - 1_000_000)
    assert done.completed_at_us == NOW_US


def test_total_processed_is_the_first_stages_input() -> None:
    row = report(started(), "feature_search", 500, 0)
    assert summary_of(row).total_processed == 500
    row = report(row, "feature_search", 800, 1)  # the first stage reports again
    assert summary_of(row).total_processed == 800
    row = report(row, "attribute_filter", 50, 2)
    row = report(row, "feature_search", 10, 2)  # too late: a later stage has reported
    assert summary_of(row).total_processed == 800


def test_equal_records_have_equal_etags() -> None:
    one = report(report(started(), "a", 5, 1), "b", 3, 2)
    two = report(report(started(), "a", 5, 1), "b", 3, 2)
    assert one.detail == two.detail
    assert one.etag == two.etag


def test_terminal_rows_refuse_every_transition() -> None:
    failed = lifecycle.fail(
        started(), lifecycle.prepare_failure(writer_pb2.FailExecutionRequest(error="x")), NOW_US
    )
    with pytest.raises(ExecutionTerminalError):
        report(failed, "a", 1, 0)


@pytest.mark.parametrize(
    "status", [execution_pb2.EXECUTION_STATUS_UNSPECIFIED, execution_pb2.EXECUTION_STATUS_RUNNING]
)
def test_no_execution_is_stored_with_a_status_readers_must_never_see(
    status: execution_pb2.ExecutionStatus.ValueType,
) -> None:
    detail = execution_pb2.ExecutionDetail.FromString(started().detail)
    detail.status = status
    with pytest.raises(ValueError, match="cannot be stored with status"):
        to_row(detail, namespace_id="ns_a", request_id=None, total_processed=0, total_returned=0)


def test_every_stored_state_carries_a_real_status_in_both_blobs() -> None:
    rows = [started()]
    rows.append(report(rows[-1], "search", 10, 1))
    completion = lifecycle.prepare_completion(writer_pb2.CompleteExecutionRequest())
    rows.append(lifecycle.complete(rows[-1], completion, NOW_US + 1))
    failure = lifecycle.prepare_failure(writer_pb2.FailExecutionRequest(error="boom"))
    rows.append(lifecycle.fail(rows[-3], failure, NOW_US + 1))
    for row in rows:
        detail = execution_pb2.ExecutionDetail.FromString(row.detail)
        summary = execution_pb2.ExecutionSummary.FromString(row.summary)
        assert detail.status == summary.status == STATUS_VALUES[row.status]
    assert [row.status for row in rows] == ["pending", "processing", "completed", "failed"]
