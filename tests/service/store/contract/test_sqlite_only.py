"""Not part of the contract: what only the SQLite store promises (pragmas,
schema versions, error mapping, index use)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from service.store.protocol import ListQuery, Namespace, Retriever, SortKey, StoreUnavailable
from service.store.sql import build_list_statements
from service.store.sqlite import _SELECT_EXECUTION, SqliteStore, _connect
from service.store.sqlite_migrations import MIGRATIONS
from tests.support.store_rows import execution


@pytest_asyncio.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "store.db", busy_timeout_ms=200)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_file_is_in_wal_mode_at_the_latest_schema_version(sqlite_store: SqliteStore) -> None:
    with sqlite3.connect(sqlite_store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    conn.close()


def test_every_connection_is_durable_and_checks_foreign_keys(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "x.db", 1234)
    try:
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (1234,)
        assert conn.isolation_level is None  # we BEGIN ourselves
    finally:
        conn.close()


@pytest.mark.asyncio
async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "x.db") as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    store = SqliteStore(tmp_path / "x.db")
    with pytest.raises(StoreUnavailable, match="newer"):
        await store.open()
    assert await store.healthy() is False


@pytest.mark.asyncio
async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "x.db").write_bytes(b"this is not a SQLite database, just text " * 100)
    with pytest.raises(StoreUnavailable):
        await SqliteStore(tmp_path / "x.db").open()


@pytest.mark.asyncio
async def test_a_path_that_cannot_be_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("")
    with pytest.raises(StoreUnavailable):
        await SqliteStore(tmp_path / "plain-file" / "x.db").open()
    with pytest.raises(StoreUnavailable):
        await SqliteStore(tmp_path).open()  # a folder


@pytest.mark.asyncio
async def test_opening_twice_is_refused_and_harmless(sqlite_store: SqliteStore) -> None:
    with pytest.raises(RuntimeError, match="already open"):
        await sqlite_store.open()
    assert await sqlite_store.healthy()
    await sqlite_store.create_namespace(Namespace("ns_1", "one", 1))


@pytest.mark.asyncio
async def test_writes_give_up_after_the_busy_timeout_while_reads_go_on(
    sqlite_store: SqliteStore,
) -> None:
    namespace = Namespace("ns_1", "one", 1)
    retriever = Retriever("ret_1", "ns_1", "r", 1)
    await sqlite_store.create_namespace(namespace)
    await sqlite_store.create_retriever(retriever)
    row = execution(retriever)
    await sqlite_store.insert_execution(row)

    # Another process's writer holds the write lock.
    other = sqlite3.connect(sqlite_store.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("DELETE FROM executions")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"):
            await sqlite_store.create_namespace(Namespace("ns_2", "two", 2))
        assert 0.15 < time.monotonic() - started < 5
        # WAL: readers see the last committed state, without waiting.
        assert await sqlite_store.get_execution("ns_1", "ret_1", row.execution_id) == row
        page = await sqlite_store.list_executions(ListQuery("ns_1", "ret_1", 10))
        assert list(page.rows) == [row]
        other.execute("ROLLBACK")
    finally:
        other.close()
    await sqlite_store.create_namespace(Namespace("ns_2", "two", 2))


LISTINGS = [
    ListQuery("ns", "ret", 50),
    ListQuery("ns", "ret", 50, include_total=True, status="failed"),
    ListQuery("ns", "ret", 50, created_after_us=1, created_before_us=2),
    ListQuery("ns", "ret", 50, sort=(SortKey("completed_at", False),), after=(1, "exec_1")),
    ListQuery("ns", "ret", 50, sort=(SortKey("duration_ms"),)),
    ListQuery("ns", "ret", 50, sort=(SortKey("credits_used"), SortKey("created_at", False))),
    ListQuery("ns", "ret", 50, after=(1, "exec_1")),
    ListQuery(
        "ns",
        "ret",
        50,
        sort=(SortKey("duration_ms"), SortKey("created_at", False)),
        after=(1.5, 2, "exec_1"),
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("listing", LISTINGS, ids=range(len(LISTINGS)))
async def test_listings_search_an_index_and_never_scan_the_table(
    sqlite_store: SqliteStore, listing: ListQuery
) -> None:
    statements = build_list_statements(listing, "qmark")
    with sqlite3.connect(sqlite_store.path) as conn:
        for statement in filter(None, (statements.page, statements.count)):
            plan = " | ".join(
                step[3]
                for step in conn.execute(f"EXPLAIN QUERY PLAN {statement.sql}", statement.params)
            )
            assert "SEARCH executions USING" in plan, plan
            assert "INDEX executions_by_" in plan, plan
            if listing.after is not None and statement is statements.page:
                # Keyset pages seek to their position rather than walk up to it.
                assert "retriever_id=? AND " in plan, plan
    conn.close()


@pytest.mark.asyncio
async def test_get_execution_is_one_primary_key_lookup(sqlite_store: SqliteStore) -> None:
    with sqlite3.connect(sqlite_store.path) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {_SELECT_EXECUTION}", ("e", "n", "r")).fetchall()
    conn.close()
    assert [step[3] for step in plan] == [
        "SEARCH executions USING INDEX sqlite_autoindex_executions_1 (execution_id=?)"
    ]
