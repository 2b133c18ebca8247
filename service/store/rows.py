"""Execution rows to and from SQL records, and the update rule, shared by the SQL stores.

The SQLite and PostgreSQL stores differ in dialect and driver, not in how a
row maps onto the columns of `service.store.sql.EXECUTION_COLUMNS`, how a
page is cut from the one-row-longer listing fetched, or which updates they
accept; those live here so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from service.store.protocol import ExecutionRow, ExecutionUpdate, ListPage


def execution_values(row: ExecutionRow) -> tuple[object, ...]:
    """The row's values in the order of `EXECUTION_COLUMNS`; `ExecutionRow(*record)` inverts it."""
    return (
        row.execution_id,
        row.namespace_id,
        row.retriever_id,
        row.request_id,
        row.status,
        row.created_at_us,
        row.completed_at_us,
        row.duration_ms,
        row.credits_used,
        row.detail,
        row.summary,
        row.etag,
    )


def list_page(records: Sequence[Iterable[Any]], limit: int, total: int | None) -> ListPage:
    """The page of a listing fetched with `limit + 1` rows (the extra one says there is more)."""
    rows = [ExecutionRow(*record) for record in records[:limit]]
    return ListPage(rows=rows, has_next=len(records) > limit, total=total)


def updated_execution(current: ExecutionRow, update: ExecutionUpdate) -> ExecutionRow:
    """What `update` makes of the stored `current`; ValueError if it is another execution."""
    new = update(current)
    if (new.execution_id, new.namespace_id, new.retriever_id) != (
        current.execution_id,
        current.namespace_id,
        current.retriever_id,
    ):
        raise ValueError("an update must not change which execution it is")
    return new
