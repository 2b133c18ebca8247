"""Contract: listing one retriever's executions (filters, sorts, offset and keyset paging)."""

from __future__ import annotations

import math

import pytest
import pytest_asyncio

from service.store.protocol import ExecutionRow, ExecutionStatusName, ListQuery, SortKey, Store
from service.store.sql import keyset_position
from tests.support.store_rows import execution, next_version

from .conftest import Scope

T0 = 1_700_000_000_000_000
ROWS = 29  # prime, so no page size divides it
STATUSES: tuple[ExecutionStatusName, ...] = ("pending", "processing", "completed", "failed")


def reference_order(rows: list[ExecutionRow], sort: tuple[SortKey, ...]) -> list[str]:
    """ListQuery's ordering rules, spelt out in Python: the oracle of this file."""

    def value(row: ExecutionRow, key: SortKey) -> float:
        raw = {
            "created_at": row.created_at_us,
            "completed_at": row.completed_at_us,
            "duration_ms": row.duration_ms,
            "credits_used": row.credits_used,
        }[key.column]
        if raw is None and key.column == "completed_at":
            return -math.inf if key.descending else math.inf  # in flight: last either way
        return -1 if raw is None else raw

    ordered = sorted(rows, key=lambda r: r.execution_id, reverse=sort[-1].descending)
    for key in reversed(sort):  # stable sorts, least significant key first
        ordered.sort(key=lambda r, k=key: value(r, k), reverse=key.descending)  # type: ignore[misc]
    return [row.execution_id for row in ordered]


@pytest_asyncio.fixture
async def listed(store: Store, scope: Scope) -> list[ExecutionRow]:
    """ROWS executions of scope.retriever with many equal sort values and NULLs,
    plus rows of other retrievers that no listing may return."""
    rows = []
    for i in range(ROWS):
        status = STATUSES[i % 4]
        finished = status in ("completed", "failed")
        created = T0 + (i // 3) * 1_000_000  # three executions per second
        rows.append(
            execution(
                scope.retriever,
                execution_id=f"exec_{(i * 7) % ROWS:03d}",  # ID order is not creation order
                status=status,
                created_at_us=created,
                completed_at_us=created + (i % 5) * 100_000 if finished else None,
                duration_ms=float((i % 5) * 100) if finished else None,
                credits_used=float(i % 3),
            )
        )
    for row in rows:
        await store.insert_execution(row)
    for other in (scope.sibling, scope.foreign):
        await store.insert_execution(execution(other, created_at_us=T0 + 5_000_000))
    return rows


def query(scope: Scope, **fields: object) -> ListQuery:
    return ListQuery(scope.namespace.id, scope.retriever.id, **fields)  # type: ignore[arg-type]


def ids(rows: object) -> list[str]:
    assert isinstance(rows, list | tuple)
    return [row.execution_id for row in rows]


@pytest.mark.asyncio
async def test_default_listing_is_newest_first(
    store: Store, scope: Scope, listed: list[ExecutionRow]
) -> None:
    page = await store.list_executions(query(scope, limit=100))

    created = [row.created_at_us for row in page.rows]
    assert created == sorted(created, reverse=True)
    assert len(page.rows) == ROWS
    # Rows created in the same microsecond: highest execution_id first.
    for newer, older in zip(page.rows, page.rows[1:], strict=False):
        if newer.created_at_us == older.created_at_us:
            assert newer.execution_id > older.execution_id
    assert ids(page.rows) == reference_order(listed, (SortKey("created_at", True),))
    assert set(page.rows) == set(listed)  # whole rows, blobs included
    assert page.has_next is False
    assert page.total is None


@pytest.mark.asyncio
@pytest.mark.parametrize("column", ["created_at", "completed_at", "duration_ms", "credits_used"])
@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
async def test_each_sort_column_in_each_direction(
    store: Store, scope: Scope, listed: list[ExecutionRow], column: str, descending: bool
) -> None:
    sort = (SortKey(column, descending),)  # type: ignore[arg-type]
    page = await store.list_executions(query(scope, limit=100, sort=sort))
    assert ids(page.rows) == reference_order(listed, sort)


@pytest.mark.asyncio
@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
async def test_in_flight_executions_sort_last_by_completed_at(
    store: Store, scope: Scope, listed: list[ExecutionRow], descending: bool
) -> None:
    sort = (SortKey("completed_at", descending),)
    page = await store.list_executions(query(scope, limit=100, sort=sort))
    finished = [row.completed_at_us is not None for row in page.rows]
    assert finished == sorted(finished, reverse=True)  # every finished one, then the rest
    done = [row.completed_at_us for row in page.rows if row.completed_at_us is not None]
    assert done == sorted(done, reverse=descending)


@pytest.mark.asyncio
async def test_running_status_filter_is_every_execution_in_flight(
    store: Store, scope: Scope, listed: list[ExecutionRow]
) -> None:
    page = await store.list_executions(
        query(scope, limit=100, status="running", include_total=True)
    )
    expected = [r for r in listed if r.status in ("pending", "processing")]
    assert ids(page.rows) == reference_order(expected, (SortKey("created_at"),))
    assert page.total == len(expected)


@pytest.mark.asyncio
async def test_status_and_created_range_filters(
    store: Store, scope: Scope, listed: list[ExecutionRow]
) -> None:
    completed = await store.list_executions(
        query(scope, limit=100, status="completed", include_total=True)
    )
    expected = [r for r in listed if r.status == "completed"]
    assert ids(completed.rows) == reference_order(expected, (SortKey("created_at"),))
    assert completed.total == len(expected)

    # created_after is inclusive, created_before exclusive.
    window = await store.list_executions(
        query(scope, limit=100, created_after_us=T0 + 2_000_000, created_before_us=T0 + 4_000_000)
    )
    inside = [r for r in listed if T0 + 2_000_000 <= r.created_at_us < T0 + 4_000_000]
    assert len(inside) == 6
    assert ids(window.rows) == reference_order(inside, (SortKey("created_at"),))

    both = await store.list_executions(
        query(scope, limit=100, status="failed", created_after_us=T0 + 3_000_000)
    )
    assert ids(both.rows) == reference_order(
        [r for r in listed if r.status == "failed" and r.created_at_us >= T0 + 3_000_000],
        (SortKey("created_at"),),
    )


@pytest.mark.asyncio
async def test_filters_follow_updates(
    store: Store, scope: Scope, listed: list[ExecutionRow]
) -> None:
    pending = next(r for r in listed if r.status == "pending")
    await store.update_execution(
        scope.namespace.id,
        scope.retriever.id,
        pending.execution_id,
        lambda row: next_version(
            row, status="failed", completed_at_us=row.created_at_us + 1, duration_ms=0.5
        ),
    )

    failed = await store.list_executions(query(scope, limit=100, status="failed"))
    still_pending = await store.list_executions(query(scope, limit=100, status="pending"))
    assert pending.execution_id in ids(failed.rows)
    assert pending.execution_id not in ids(still_pending.rows)
    # Its new duration (0.5) moves it in the duration order, among all statuses.
    updated = [
        next_version(r, status="failed", completed_at_us=r.created_at_us + 1, duration_ms=0.5)
        if r == pending
        else r
        for r in listed
    ]
    sort = (SortKey("duration_ms", False),)
    by_duration = await store.list_executions(query(scope, limit=100, sort=sort))
    assert ids(by_duration.rows) == reference_order(updated, sort)


@pytest.mark.asyncio
async def test_offset_paging_with_total_and_has_next(
    store: Store, scope: Scope, listed: list[ExecutionRow]
) -> None:
    sort = (SortKey("credits_used", False), SortKey("created_at", True))
    seen: list[str] = []
    offset = 0
    while True:
        page = await store.list_executions(
            query(scope, limit=4, offset=offset, sort=sort, include_total=True)
        )
        assert page.total == ROWS
        assert len(page.rows) == min(4, ROWS - offset)
        seen += ids(page.rows)
        offset += 4
        assert page.has_next == (offset < ROWS)
        if not page.has_next:
            break
    assert seen == reference_order(listed, sort)

    beyond = await store.list_executions(query(scope, limit=4, offset=ROWS, include_total=True))
    assert (list(beyond.rows), beyond.has_next, beyond.total) == ([], False, ROWS)


@pytest.mark.asyncio
async def test_exact_last_page_has_no_next(
    store: Store, scope: Scope, listed: list[ExecutionRow]
) -> None:
    page = await store.list_executions(query(scope, limit=ROWS))
    assert len(page.rows) == ROWS
    assert page.has_next is False
    short = await store.list_executions(query(scope, limit=ROWS - 1))
    assert short.has_next is True


KEYSET_SORTS = [
    (SortKey("created_at", True),),
    (SortKey("created_at", False),),
    (SortKey("completed_at", True),),
    (SortKey("completed_at", False),),  # in flight last: after them, a sentinel position
    (SortKey("duration_ms", False),),
    (SortKey("credits_used", True), SortKey("created_at", True)),
    (SortKey("credits_used", False), SortKey("created_at", True)),  # mixed directions
    (SortKey("credits_used", True), SortKey("duration_ms", False)),  # mixed, NULLs
    (SortKey("duration_ms", True), SortKey("credits_used", False), SortKey("completed_at", True)),
    (SortKey("credits_used", True), SortKey("completed_at", False)),  # mixed, in flight last
]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "sort",
    KEYSET_SORTS,
    ids=lambda s: ",".join(f"{k.column}:{'desc' if k.descending else 'asc'}" for k in s),
)
@pytest.mark.parametrize("limit", [1, 4])
async def test_keyset_paging_visits_every_row_once(
    store: Store, scope: Scope, listed: list[ExecutionRow], sort: tuple[SortKey, ...], limit: int
) -> None:
    seen: list[str] = []
    after = None
    for _ in range(ROWS + 1):
        page = await store.list_executions(
            # offset must be ignored once `after` is set
            query(scope, limit=limit, sort=sort, after=after, offset=0 if after is None else 3)
        )
        seen += ids(page.rows)
        if not page.has_next:
            break
        assert len(page.rows) == limit
        after = keyset_position(page.rows[-1], sort)
    assert seen == reference_order(listed, sort)


@pytest.mark.asyncio
async def test_keyset_paging_with_a_filter_and_total(
    store: Store, scope: Scope, listed: list[ExecutionRow]
) -> None:
    sort = (SortKey("completed_at", False),)
    expected = reference_order([r for r in listed if r.status == "completed"], sort)
    first = await store.list_executions(
        query(scope, limit=3, sort=sort, status="completed", include_total=True)
    )
    second = await store.list_executions(
        query(
            scope,
            limit=100,
            sort=sort,
            status="completed",
            include_total=True,
            after=keyset_position(first.rows[-1], sort),
        )
    )
    assert ids(first.rows) + ids(second.rows) == expected
    assert first.total == second.total == len(expected)
    assert (first.has_next, second.has_next) == (True, False)


@pytest.mark.asyncio
async def test_after_of_the_wrong_length_is_refused(store: Store, scope: Scope) -> None:
    with pytest.raises(ValueError, match="after"):
        await store.list_executions(query(scope, limit=5, after=(T0,)))


@pytest.mark.asyncio
async def test_empty_retriever_lists_nothing(store: Store, scope: Scope) -> None:
    page = await store.list_executions(query(scope, limit=5, include_total=True))
    assert (list(page.rows), page.has_next, page.total) == ([], False, 0)
