"""Contract: inserting, reading and updating executions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from service.store.protocol import AlreadyExists, ExecutionRow, NotFound, Store
from tests.support.store_rows import execution, next_version

from .conftest import Scope


@pytest.mark.asyncio
async def test_inserted_execution_reads_back_byte_for_byte(store: Store, scope: Scope) -> None:
    row = execution(
        scope.retriever,
        status="completed",
        completed_at_us=1_700_000_000_250_000,
        duration_ms=250.125,
        credits_used=3.5,
    )

    assert await store.insert_execution(row) == (row, True)

    stored = await store.get_execution(scope.namespace.id, scope.retriever.id, row.execution_id)
    assert stored == row
    assert stored is not None
    assert stored.detail.startswith(b"\x00\xff\xfe")


@pytest.mark.asyncio
async def test_execution_is_invisible_from_another_scope(store: Store, scope: Scope) -> None:
    row = execution(scope.retriever)
    await store.insert_execution(row)

    missing = [
        (scope.namespace.id, scope.sibling.id, row.execution_id),  # wrong retriever
        (scope.other_namespace.id, scope.retriever.id, row.execution_id),  # wrong namespace
        (scope.other_namespace.id, scope.foreign.id, row.execution_id),
        (scope.namespace.id, scope.retriever.id, "exec_missing"),
    ]
    for namespace_id, retriever_id, execution_id in missing:
        assert await store.get_execution(namespace_id, retriever_id, execution_id) is None


@pytest.mark.asyncio
async def test_insert_with_a_known_request_id_returns_the_existing_row(
    store: Store, scope: Scope
) -> None:
    first = execution(scope.retriever, request_id="req-1", credits_used=1.0)
    retry = execution(scope.retriever, request_id="req-1", credits_used=2.0)

    assert await store.insert_execution(first) == (first, True)
    assert await store.insert_execution(retry) == (first, False)
    assert (
        await store.get_execution(scope.namespace.id, scope.retriever.id, retry.execution_id)
        is None
    )
    assert (
        await store.get_execution(scope.namespace.id, scope.retriever.id, first.execution_id)
        == first
    )


@pytest.mark.asyncio
async def test_request_ids_are_unique_per_retriever_only(store: Store, scope: Scope) -> None:
    rows = [
        execution(scope.retriever, request_id="req-1"),
        execution(scope.sibling, request_id="req-1"),
        execution(scope.foreign, request_id="req-1"),
        # Without a request_id nothing is deduplicated.
        execution(scope.retriever),
        execution(scope.retriever),
    ]
    for row in rows:
        assert await store.insert_execution(row) == (row, True)
    for row in rows:
        assert (
            await store.get_execution(row.namespace_id, row.retriever_id, row.execution_id) == row
        )


@pytest.mark.asyncio
async def test_insert_of_a_taken_execution_id_is_already_exists(store: Store, scope: Scope) -> None:
    row = execution(scope.retriever)
    await store.insert_execution(row)

    with pytest.raises(AlreadyExists):
        await store.insert_execution(replace(row, credits_used=9.0))
    assert (
        await store.get_execution(scope.namespace.id, scope.retriever.id, row.execution_id) == row
    )


@pytest.mark.asyncio
async def test_update_sees_the_current_row_and_stores_the_result(
    store: Store, scope: Scope
) -> None:
    row = execution(scope.retriever, request_id="req-1")
    await store.insert_execution(row)
    processing = next_version(row, status="processing", credits_used=1.25)
    await store.update_execution(
        scope.namespace.id, scope.retriever.id, row.execution_id, lambda _: processing
    )
    completed = next_version(
        processing,
        status="completed",
        completed_at_us=row.created_at_us + 1_500_000,
        duration_ms=1500.0,
        credits_used=2.5,
    )
    seen: list[ExecutionRow] = []

    def complete(current: ExecutionRow) -> ExecutionRow:
        seen.append(current)
        return completed

    result = await store.update_execution(
        scope.namespace.id, scope.retriever.id, row.execution_id, complete
    )

    assert seen == [processing]
    assert result == completed
    assert (
        await store.get_execution(scope.namespace.id, scope.retriever.id, row.execution_id)
        == completed
    )
    # The request_id still deduplicates after updates.
    assert await store.insert_execution(execution(scope.retriever, request_id="req-1")) == (
        completed,
        False,
    )


@pytest.mark.asyncio
async def test_update_that_raises_changes_nothing(store: Store, scope: Scope) -> None:
    row = execution(scope.retriever)
    await store.insert_execution(row)

    class RefusedError(Exception):
        pass

    def refuse(current: ExecutionRow) -> ExecutionRow:
        raise RefusedError(current.execution_id)

    with pytest.raises(RefusedError):
        await store.update_execution(
            scope.namespace.id, scope.retriever.id, row.execution_id, refuse
        )
    assert (
        await store.get_execution(scope.namespace.id, scope.retriever.id, row.execution_id) == row
    )
    # The store is still writable afterwards (the transaction did not leak).
    updated = next_version(row, status="processing")
    assert (
        await store.update_execution(
            scope.namespace.id, scope.retriever.id, row.execution_id, lambda _: updated
        )
        == updated
    )


@pytest.mark.asyncio
async def test_update_outside_the_execution_scope_is_not_found(store: Store, scope: Scope) -> None:
    row = execution(scope.retriever)
    await store.insert_execution(row)
    calls: list[ExecutionRow] = []

    def record(current: ExecutionRow) -> ExecutionRow:
        calls.append(current)
        return next_version(current)

    for namespace_id, retriever_id, execution_id in [
        (scope.namespace.id, scope.retriever.id, "exec_missing"),
        (scope.namespace.id, scope.sibling.id, row.execution_id),
        (scope.other_namespace.id, scope.retriever.id, row.execution_id),
    ]:
        with pytest.raises(NotFound):
            await store.update_execution(namespace_id, retriever_id, execution_id, record)
    assert calls == []
    assert (
        await store.get_execution(scope.namespace.id, scope.retriever.id, row.execution_id) == row
    )


@pytest.mark.asyncio
async def test_concurrent_updates_lose_no_write(store: Store, scope: Scope) -> None:
    rows = [execution(scope.retriever), execution(scope.sibling)]
    for row in rows:
        await store.insert_execution(row)
    tasks_per_row = 12

    def add_credit(current: ExecutionRow) -> ExecutionRow:
        return next_version(current, credits_used=current.credits_used + 1)

    await asyncio.gather(
        *(
            store.update_execution(row.namespace_id, row.retriever_id, row.execution_id, add_credit)
            for _ in range(tasks_per_row)
            for row in rows
        )
    )

    for row in rows:
        stored = await store.get_execution(row.namespace_id, row.retriever_id, row.execution_id)
        assert stored is not None
        assert stored.credits_used == tasks_per_row
        assert stored.etag == f'"{row.execution_id}-{tasks_per_row + 1}"'


def constant(row: ExecutionRow) -> Callable[[ExecutionRow], ExecutionRow]:
    return lambda _: row


@pytest.mark.asyncio
async def test_update_may_not_move_the_execution(store: Store, scope: Scope) -> None:
    row = execution(scope.retriever)
    await store.insert_execution(row)

    for moved in (
        replace(row, execution_id="exec_other"),
        replace(row, retriever_id=scope.sibling.id),
        replace(row, namespace_id=scope.other_namespace.id, retriever_id=scope.foreign.id),
    ):
        with pytest.raises(ValueError, match="must not change"):
            await store.update_execution(
                scope.namespace.id, scope.retriever.id, row.execution_id, constant(moved)
            )
    assert (
        await store.get_execution(scope.namespace.id, scope.retriever.id, row.execution_id) == row
    )
    assert await store.get_execution(scope.namespace.id, scope.retriever.id, "exec_other") is None
