"""WatchExecution over a real server on SQLite: events in order, resume, errors, limits, ends."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
import tracemalloc
from pathlib import Path

import grpc
import orjson
import pytest
from execgate.retrievers.v1 import execution_events_pb2 as events_pb2
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.type.v1 import raw_json_pb2

from service import ids
from service.rpc.watch import WatchSettings
from service.store.protocol import ExecutionRow
from tests.support.grpc_calls import failure
from tests.support.running_service import RunningService, Stubs, auth, start_service, stubs
from tests.support.service_tenants import add_tenants
from tests.support.watching import (
    DRIVEN_KINDS,
    Driver,
    events_until,
    kind,
    read_to_the_end,
    watch,
)

Status = execution_pb2.ExecutionStatus


def driver(service: RunningService, calls: Stubs) -> Driver:
    return Driver(calls, auth(service.demo.api_key), service.demo.retriever.name)


@pytest.mark.asyncio
async def test_a_watcher_sees_every_change_from_pending_to_completed(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    writer = driver(running_service, service_stubs)
    execution_id = await writer.start()
    call = watch(service_stubs, writer.metadata, writer.retriever, execution_id)
    (snapshot,) = await events_until(call, 1)
    assert snapshot.event_id == "0"
    assert snapshot.snapshot.execution.status == Status.EXECUTION_STATUS_PENDING
    assert snapshot.snapshot.reset_reason == ""

    drive = asyncio.create_task(writer.run(interval=0.05))
    events = [event async for event in call]
    await drive
    assert [kind(event) for event in events] == DRIVEN_KINDS
    assert [event.event_id for event in events] == [str(n) for n in range(1, len(events) + 1)]
    assert await call.code() is grpc.StatusCode.OK
    # Status on the way: processing from the first stage event, completed at the end.
    assert {e.stage_progress.status for e in events if e.HasField("stage_progress")} == {
        Status.EXECUTION_STATUS_PROCESSING
    }
    completed = next(e for e in events if e.HasField("stage_completed")).stage_completed
    assert (completed.statistics.input_count, completed.statistics.output_count) == (100, 20)
    assert completed.statistics.efficiency == pytest.approx(0.2)
    assert completed.stages_completed == 1
    budget = next(e for e in events if e.HasField("budget_changed")).budget_changed
    assert orjson.loads(budget.budget.json) == {"credits_used": 0.5}
    # The terminal event is the final detail, the very bytes GetExecution returns.
    final = events[-1].completed
    assert final.status == Status.EXECUTION_STATUS_COMPLETED
    assert final.SerializeToString() == (
        await get_detail(running_service, service_stubs, execution_id)
    )
    assert running_service.server.watch_hub.watchers == 0


async def get_detail(service: RunningService, calls: Stubs, execution_id: str) -> bytes:
    detail = await calls.reader.GetExecution(
        service_pb2.GetExecutionRequest(
            retriever_id=service.demo.retriever.id, execution_id=execution_id
        ),
        metadata=auth(service.demo.api_key),
    )
    return detail.SerializeToString()


@pytest.mark.asyncio
async def test_resuming_after_any_event_gives_the_rest_without_loss_or_duplicates(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    writer = driver(running_service, service_stubs)
    execution_id = await writer.start()
    await writer.run()
    for last in range(len(DRIVEN_KINDS)):
        call = watch(service_stubs, writer.metadata, writer.retriever, execution_id, str(last))
        events = [event async for event in call]
        assert [kind(event) for event in events] == DRIVEN_KINDS[last:]
        assert [int(event.event_id) for event in events] == list(
            range(last + 1, len(DRIVEN_KINDS) + 1)
        )
    # Resuming after the terminal event: nothing more, the stream just ends.
    call = watch(service_stubs, writer.metadata, writer.retriever, execution_id, "9")
    assert [event async for event in call] == []
    assert await call.code() is grpc.StatusCode.OK


@pytest.mark.asyncio
async def test_resuming_while_the_writer_is_still_going(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    writer = driver(running_service, service_stubs)
    execution_id = await writer.start()
    first = watch(service_stubs, writer.metadata, writer.retriever, execution_id)
    await events_until(first, 1)
    await writer.step()
    await writer.step()
    seen = await events_until(first, 3)  # started, progress, completed of "search"
    first.cancel()  # the connection drops ...
    await writer.step()  # ... a change happens meanwhile ...
    resumed = watch(
        service_stubs, writer.metadata, writer.retriever, execution_id, seen[-1].event_id
    )
    drive = asyncio.create_task(writer.run())
    rest = [event async for event in resumed]
    await drive
    assert [kind(e) for e in seen + rest] == DRIVEN_KINDS
    assert len({e.event_id for e in seen + rest}) == len(DRIVEN_KINDS)


@pytest.mark.parametrize("last_event_id", ["99", "abc", "-1", "1.5"])
@pytest.mark.asyncio
async def test_an_unknown_resume_position_restarts_with_a_snapshot_saying_so(
    running_service: RunningService, service_stubs: Stubs, last_event_id: str
) -> None:
    writer = driver(running_service, service_stubs)
    execution_id = await writer.start()
    await writer.step()
    call = watch(service_stubs, writer.metadata, writer.retriever, execution_id, last_event_id)
    (snapshot,) = await events_until(call, 1)
    assert snapshot.snapshot.reset_reason == "unknown_event_id"
    assert snapshot.event_id == "2"
    assert snapshot.snapshot.execution.status == Status.EXECUTION_STATUS_PROCESSING
    call.cancel()


@pytest.mark.asyncio
async def test_an_over_long_resume_position_is_invalid_before_any_event(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    demo = running_service.demo
    call = watch(
        service_stubs, auth(demo.api_key), demo.retriever.name, demo.executions["pending"], "9" * 21
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call.read()
    assert failure(error.value).code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure(error.value).metadata == {"field": "last_event_id"}


@pytest.mark.asyncio
async def test_a_terminal_execution_gives_its_snapshot_and_ends(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    demo = running_service.demo
    for name, status in (
        ("completed_1000", Status.EXECUTION_STATUS_COMPLETED),
        ("failed", Status.EXECUTION_STATUS_FAILED),
    ):
        call = watch(service_stubs, auth(demo.api_key), demo.retriever.id, demo.executions[name])
        events = [event async for event in call]
        assert [kind(event)[0] for event in events] == ["snapshot"]
        assert events[0].snapshot.execution.status == status
        assert await call.code() is grpc.StatusCode.OK


@pytest.mark.asyncio
async def test_not_found_and_unauthenticated_come_before_any_event(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    demo = running_service.demo
    tenants = await add_tenants(running_service, service_stubs)
    cases = [
        # Another tenant's execution, through the demo retriever's name: not found.
        (auth(demo.api_key), demo.retriever.name, tenants.other_execution_id, "NOT_FOUND"),
        (auth(demo.api_key), demo.retriever.name, ids.new_execution_id(), "NOT_FOUND"),
        (auth(demo.api_key), "no-such-retriever", demo.executions["pending"], "NOT_FOUND"),
        ((), demo.retriever.name, demo.executions["pending"], "UNAUTHENTICATED"),
        (auth("nope"), demo.retriever.name, demo.executions["pending"], "UNAUTHENTICATED"),
        (
            auth(tenants.write_only_key),
            demo.retriever.name,
            demo.executions["pending"],
            "PERMISSION_DENIED",
        ),
    ]
    for metadata, retriever, execution_id, code in cases:
        call = watch(service_stubs, metadata, retriever, execution_id)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call.read()
        assert error.value.code().name == code, (retriever, execution_id)
        # No event first: the status arrives with no message before it.
        assert await call.code() is error.value.code()
    assert running_service.server.watch_hub.watchers == 0


@pytest.mark.asyncio
async def test_an_idle_stream_gets_heartbeats_and_ends_resumably_at_its_maximum_duration(
    tmp_path: Path,
) -> None:
    settings = WatchSettings(keepalive_seconds=0.2, max_stream_seconds=1.0)
    async with (
        start_service(tmp_path, watch=settings) as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        demo = service.demo
        execution_id = demo.executions["processing"]
        started = time.monotonic()
        call = watch(stubs(channel), auth(demo.api_key), demo.retriever.name, execution_id)
        events, error = await read_to_the_end(call)
        elapsed = time.monotonic() - started
        assert kind(events[0])[0] == "snapshot"
        heartbeats = [event for event in events[1:] if event.HasField("heartbeat")]
        assert len(heartbeats) == len(events) - 1 >= 3
        assert {event.event_id for event in events} == {events[0].event_id}
        assert 0.9 <= elapsed < 3.0
        assert error is not None
        ended = failure(error)
        assert ended.code is grpc.StatusCode.UNAVAILABLE
        assert ended.reason == "STREAM_DURATION_LIMIT"
        assert ended.metadata == {"last_event_id": events[0].event_id}


@pytest.mark.asyncio
async def test_shutdown_ends_open_streams_at_once_and_resumably(tmp_path: Path) -> None:
    async with start_service(tmp_path) as service:
        channel = grpc.aio.insecure_channel(service.address)
        demo = service.demo
        calls = [
            watch(stubs(channel), auth(demo.api_key), demo.retriever.name, demo.executions[name])
            for name in ("processing", "pending")
        ]
        for call in calls:
            await events_until(call, 1)
        started = time.monotonic()
        await service.server.stop(grace_seconds=30.0)
        assert time.monotonic() - started < 2.0  # not the 30 s of grace
        for call in calls:
            assert await call.code() is grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in (await call.details() or "")
        await channel.close()


@pytest.mark.asyncio
async def test_a_cancelled_stream_frees_its_watcher(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    demo = running_service.demo
    hub = running_service.server.watch_hub
    calls = [
        watch(service_stubs, auth(demo.api_key), demo.retriever.name, demo.executions["pending"])
        for _ in range(5)
    ]
    for call in calls:
        await events_until(call, 1)
    assert hub.watchers == 5
    assert running_service.server.metrics.watch_streams == 5
    (gauge,) = [
        family
        for family in running_service.server.metrics.families()
        if family.name == "execgate_service_watch_streams"
    ]
    assert [sample.value for sample in gauge.samples] == [5]
    (started,) = [
        family
        for family in running_service.server.metrics.families()
        if family.name == "grpc_server_started"
    ]
    watch_labels = {
        "grpc_type": "server_stream",
        "grpc_service": "execgate.retrievers.v1.ExecutionService",
        "grpc_method": "WatchExecution",
    }
    assert [s.value for s in started.samples if s.labels == watch_labels] == [5]
    for call in calls:
        call.cancel()
    async with asyncio.timeout(2.0):
        while hub.watchers:  # noqa: ASYNC110 (the hub has no event to wait on)
            await asyncio.sleep(0.01)
    assert running_service.server.metrics.watch_streams == 0


@pytest.mark.asyncio
async def test_watchers_beyond_the_limit_are_resource_exhausted(tmp_path: Path) -> None:
    async with (
        start_service(tmp_path, max_watchers=2) as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        demo = service.demo
        open_calls = [
            watch(
                stubs(channel), auth(demo.api_key), demo.retriever.name, demo.executions["pending"]
            )
            for _ in range(2)
        ]
        for call in open_calls:
            await events_until(call, 1)
        third = watch(
            stubs(channel), auth(demo.api_key), demo.retriever.name, demo.executions["pending"]
        )
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await third.read()
        assert failure(error.value).reason == "TOO_MANY_WATCHERS"
        assert error.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        for call in open_calls:
            call.cancel()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_writer_in_another_process_reaches_the_watcher(
    running_service: RunningService, service_stubs: Stubs, tmp_path: Path
) -> None:
    """`demo drive` writes to the SQLite file from its own process: the server's change check."""
    demo = running_service.demo
    call = watch(
        service_stubs, auth(demo.api_key), demo.retriever.name, demo.executions["processing"]
    )
    await events_until(call, 1)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "demo",
        "drive",
        "--store",
        running_service.store_url,
        "--interval-seconds",
        "0.05",
        "--key-file",
        str(tmp_path / "demo-key"),
        stdout=asyncio.subprocess.PIPE,
    )
    events = [event async for event in call]
    output, _ = await process.communicate()
    assert process.returncode == 0, output
    assert [kind(event) for event in events] == [
        ("stage_progress", "attribute_filter"),
        ("stage_completed", "attribute_filter"),
        ("stage_started", "rerank"),
        ("budget_changed", ""),
        ("stage_progress", "rerank"),
        ("stage_completed", "rerank"),
        ("budget_changed", ""),
        ("completed", ""),
    ]
    assert events[-1].completed.status == Status.EXECUTION_STATUS_COMPLETED


def _progress_events(count: int, size: int) -> list[bytes]:
    metadata = raw_json_pb2.RawJson(json=orjson.dumps({"padding": "x" * size}).decode())
    event = events_pb2.ExecutionEvent(
        stage_progress=events_pb2.StageProgress(
            stage_name="search",
            statistics=execution_pb2.StageStatistics(input_count=1, metadata=metadata),
        )
    )
    return [event.SerializeToString()] * count


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_reader_that_stops_reading_costs_the_service_no_memory_per_event(
    running_service: RunningService, service_stubs: Stubs
) -> None:
    """1,500 events of 16 KB (24 MB) while the client reads nothing: the service's
    Python heap does not grow with them, and the reader, once it reads again,
    gets a fresh snapshot marked `expired` in place of what the log dropped."""
    writer = driver(running_service, service_stubs)
    execution_id = await writer.start()
    call = watch(service_stubs, writer.metadata, writer.retriever, execution_id)
    await events_until(call, 1)
    store = running_service.store
    demo = running_service.demo
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(30):
            await store.update_execution(
                demo.namespace.id,
                demo.retriever.id,
                execution_id,
                next_etag,
                lambda _before, _after: _progress_events(50, 16_000),
            )
            await asyncio.sleep(0.05)  # let the watcher run: it is woken and writes
        await asyncio.sleep(0.5)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 4_000_000, f"the service's heap grew by {grown} bytes"

    writer.taken = 4
    await writer.step()  # completes it
    events, error = await read_to_the_end(call)
    assert error is None
    assert len(events) < 1500
    resets = [e for e in events if e.HasField("snapshot")]
    assert [e.snapshot.reset_reason for e in resets] == ["expired"]
    ids_seen = [int(e.event_id) for e in events]
    assert ids_seen == sorted(ids_seen)
    # It ends with the completed execution: the terminal event, or (when the
    # reader resumed after completion) the reset snapshot of the final state.
    last = events[-1]
    final = last.completed if last.HasField("completed") else last.snapshot.execution
    assert final.status == Status.EXECUTION_STATUS_COMPLETED


def next_etag(row: ExecutionRow) -> ExecutionRow:
    return dataclasses.replace(row, etag=f'"{row.event_seq}"')
