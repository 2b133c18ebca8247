"""Execution rows to and from SQL records, and the update rule, shared by the SQL stores.

The SQLite and PostgreSQL stores differ in dialect and driver, not in how a
row maps onto the columns of `service.store.sql.EXECUTION_COLUMNS`, how a
page is cut from the one-row-longer listing fetched, or which updates they
accept; those live here so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from service.store.protocol import (
    EVENTS_KEPT,
    ChangeEvents,
    ExecutionRow,
    ExecutionUpdate,
    ListPage,
)


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
        row.event_seq,
    )


def list_page(records: Sequence[Iterable[Any]], limit: int, total: int | None) -> ListPage:
    """The page of a listing fetched with `limit + 1` rows (the extra one says there is more)."""
    rows = [ExecutionRow(*record) for record in records[:limit]]
    return ListPage(rows=rows, has_next=len(records) > limit, total=total)


def updated_execution(
    current: ExecutionRow, update: ExecutionUpdate, events: ChangeEvents | None
) -> tuple[ExecutionRow, list[tuple[str, int, bytes]]]:
    """What `update` makes of the stored `current`, and the event log records to append.

    The records are (execution_id, seq, payload), numbered on from
    `current.event_seq`; the new row's `event_seq` is the last of them.
    ValueError if the update returns another execution.
    """
    new = update(current)
    if (new.execution_id, new.namespace_id, new.retriever_id) != (
        current.execution_id,
        current.namespace_id,
        current.retriever_id,
    ):
        raise ValueError("an update must not change which execution it is")
    payloads = events(current, new) if events is not None else ()
    first = current.event_seq + 1
    records = [
        (current.execution_id, seq, payload) for seq, payload in enumerate(payloads, start=first)
    ]
    return dataclasses.replace(new, event_seq=current.event_seq + len(records)), records


def events_expired_before(event_seq: int) -> int:
    """Events with a seq below this are no longer kept once the log reached `event_seq`."""
    return event_seq - EVENTS_KEPT + 1
