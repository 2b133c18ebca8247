"""Contract: each execution's event log, appended atomically with its change, and change news."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import pytest

from service.store.protocol import EVENTS_KEPT, ExecutionRow, LoggedEvent, Store
from tests.support.store_backends import StoreMaker
from tests.support.store_rows import execution, next_version

from .conftest import Scope


async def append(store: Store, row: ExecutionRow, *payloads: bytes) -> ExecutionRow:
    return await store.update_execution(
        row.namespace_id,
        row.retriever_id,
        row.execution_id,
        lambda current: next_version(current),
        lambda _before, _after: list(payloads),
    )


def seqs(events: Sequence[LoggedEvent]) -> list[int]:
    return [event.seq for event in events]


@pytest.mark.asyncio
async def test_events_are_numbered_on_from_the_rows_position(store: Store, scope: Scope) -> None:
    row = execution(scope.retriever)
    await store.insert_execution(row)
    assert row.event_seq == 0
    assert await store.read_events(row.execution_id, 0, 10) == []

    first = await append(store, row, b"a", b"\x00b\xff")
    assert first.event_seq == 2
    second = await append(store, first, b"c")
    assert second.event_seq == 3
    stored = await store.get_execution(row.namespace_id, row.retriever_id, row.execution_id)
    assert stored == second
    assert await store.read_events(row.execution_id, 0, 10) == [
        LoggedEvent(1, b"a"),
        LoggedEvent(2, b"\x00b\xff"),
        LoggedEvent(3, b"c"),
    ]
    assert seqs(await store.read_events(row.execution_id, 1, 10)) == [2, 3]
    assert seqs(await store.read_events(row.execution_id, 0, 2)) == [1, 2]
    assert await store.read_events(row.execution_id, 3, 10) == []


@pytest.mark.asyncio
async def test_an_update_without_events_keeps_the_position(store: Store, scope: Scope) -> None:
    row = execution(scope.retriever)
    await store.insert_execution(row)
    logged = await append(store, row, b"a")
    # The update function's row says event_seq 0: the store keeps its own count.
    plain = await store.update_execution(
        row.namespace_id,
        row.retriever_id,
        row.execution_id,
        lambda current: dataclasses.replace(next_version(current), event_seq=0),
    )
    assert plain.event_seq == logged.event_seq == 1
    assert seqs(await store.read_events(row.execution_id, 0, 10)) == [1]


@pytest.mark.asyncio
async def test_a_refused_update_logs_nothing(store: Store, scope: Scope) -> None:
    row = execution(scope.retriever)
    await store.insert_execution(row)

    def refuse(_before: ExecutionRow, _after: ExecutionRow) -> list[bytes]:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await store.update_execution(
            row.namespace_id, row.retriever_id, row.execution_id, next_version, refuse
        )
    stored = await store.get_execution(row.namespace_id, row.retriever_id, row.execution_id)
    assert stored == row
    assert await store.read_events(row.execution_id, 0, 10) == []


@pytest.mark.asyncio
async def test_only_the_newest_events_are_kept(store: Store, scope: Scope) -> None:
    row = execution(scope.retriever)
    await store.insert_execution(row)
    many = [str(n).encode() for n in range(EVENTS_KEPT + 5)]
    row = await append(store, row, *many)
    row = await append(store, row, b"last")
    kept = await store.read_events(row.execution_id, 0, EVENTS_KEPT + 10)
    assert seqs(kept) == list(range(row.event_seq - EVENTS_KEPT + 1, row.event_seq + 1))
    assert kept[-1].payload == b"last"


@pytest.mark.asyncio
async def test_event_positions_of_existing_executions(store: Store, scope: Scope) -> None:
    rows = [execution(scope.retriever) for _ in range(3)]
    for row in rows:
        await store.insert_execution(row)
    await append(store, rows[1], b"a", b"b")
    positions = await store.event_positions([row.execution_id for row in rows] + ["exec_none"])
    assert positions == {rows[0].execution_id: 0, rows[1].execution_id: 2, rows[2].execution_id: 0}
    assert await store.event_positions([]) == {}
    with pytest.raises(ValueError, match="at most"):
        await store.event_positions([f"exec_{n}" for n in range(501)])


@pytest.mark.asyncio
async def test_a_change_committed_by_another_store_is_announced(
    store: Store, scope: Scope, store_maker: StoreMaker
) -> None:
    row = execution(scope.retriever)
    await store.insert_execution(row)
    heard: asyncio.Queue[str | None] = asyncio.Queue()
    subscription = await store.subscribe_changes(heard.put_nowait, poll_seconds=0.05)
    other = store_maker()  # another replica, or another process's connection
    await other.open()
    try:
        await append(other, row, b"a")
        async with asyncio.timeout(5.0):
            news = await heard.get()
        # PostgreSQL names the execution; SQLite can only say "something changed".
        assert news in (row.execution_id, None)
    finally:
        await other.close()
        await subscription.close()
