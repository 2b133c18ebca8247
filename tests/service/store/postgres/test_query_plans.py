"""The planner answers every lookup and listing from an index, never a table scan."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from service.store.postgres import _SELECT_EXECUTION, PostgresStore
from service.store.protocol import ListQuery, Retriever, SortKey
from service.store.sql import build_list_statements
from tests.support.pg_cluster import fresh_schema_url, in_own_loop
from tests.support.pg_rows import seed_retriever

pytestmark = pytest.mark.postgres

RETRIEVERS = 10
ROWS_PER_RETRIEVER = 2000
NEWEST_FIRST = ListQuery("", "", 0).sort  # the default order

# Test data made by the server in one statement: every status, and missing
# completed_at / duration_ms on the unfinished ones, like a live table.
_SEED_EXECUTIONS = """
INSERT INTO executions (execution_id, namespace_id, retriever_id, request_id, status,
    created_at_us, completed_at_us, duration_ms, credits_used, detail, summary, etag)
SELECT 'exec_' || r.id || '_' || g, r.namespace_id, r.id, NULL,
    (ARRAY['pending', 'processing', 'completed', 'failed'])[1 + g % 4],
    g, CASE WHEN g % 4 >= 2 THEN g + 100 END, CASE WHEN g % 4 >= 2 THEN g * 1.5 END,
    g * 0.1, decode(repeat('ab', 1000), 'hex'), '\\x00'::bytea, '"e"'
FROM retrievers r, generate_series(1, $1) g
"""


@pytest.fixture(scope="module")
def analysed_url(request: pytest.FixtureRequest) -> str:
    """A schema holding several retrievers' executions, vacuumed and analysed
    like a live table."""
    url = fresh_schema_url(request)

    async def seed() -> None:
        store = PostgresStore(url)
        await store.open()
        try:
            for _ in range(RETRIEVERS):
                await seed_retriever(store)
        finally:
            await store.close()
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(_SEED_EXECUTIONS, ROWS_PER_RETRIEVER)
            await conn.execute("VACUUM ANALYZE executions")
        finally:
            await conn.close()

    in_own_loop(seed)
    return url


@pytest_asyncio.fixture
async def analysed(analysed_url: str) -> AsyncIterator[tuple[asyncpg.Connection, Retriever]]:
    """A connection to EXPLAIN on, and one of the retrievers."""
    conn = await asyncpg.connect(analysed_url)
    try:
        record = await conn.fetchrow(
            "SELECT id, namespace_id, name, created_at_us FROM retrievers LIMIT 1"
        )
        assert record is not None
        yield conn, Retriever(*record)
    finally:
        await conn.close()


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


async def explain(conn: asyncpg.Connection, sql: str, params: list[object]) -> list[dict[str, Any]]:
    document = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params))
    return list(plan_nodes(document[0]["Plan"]))


@pytest.mark.asyncio
async def test_get_execution_is_one_primary_key_lookup(
    analysed: tuple[asyncpg.Connection, Retriever],
) -> None:
    conn, retriever = analysed
    nodes = await explain(conn, _SELECT_EXECUTION, ["exec_x", retriever.namespace_id, retriever.id])
    assert [(n["Node Type"], n.get("Index Name")) for n in nodes] == [
        ("Index Scan", "executions_pkey")
    ]


def listings(retriever: Retriever) -> list[ListQuery]:
    ns, ret = retriever.namespace_id, retriever.id
    return [
        ListQuery(ns, ret, 50),
        ListQuery(ns, ret, 50, include_total=True, status="failed"),
        ListQuery(ns, ret, 50, include_total=True),
        ListQuery(ns, ret, 50, created_after_us=1, created_before_us=2),
        ListQuery(ns, ret, 50, sort=(SortKey("completed_at", False),), after=(1, "exec_1")),
        ListQuery(ns, ret, 50, sort=(SortKey("duration_ms"),)),
        ListQuery(ns, ret, 50, sort=(SortKey("credits_used"), SortKey("created_at", False))),
        ListQuery(ns, ret, 50, after=(1, "exec_1")),
        ListQuery(
            ns,
            ret,
            50,
            sort=(SortKey("duration_ms"), SortKey("created_at", False)),
            after=(1.5, 2, "exec_1"),
        ),
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("number", range(len(listings(Retriever("n", "r", "x", 0)))))
async def test_listings_search_an_index_and_never_scan_the_table(
    analysed: tuple[asyncpg.Connection, Retriever], number: int
) -> None:
    conn, retriever = analysed
    listing = listings(retriever)[number]
    statements = build_list_statements(listing, "dollar")
    for statement in filter(None, (statements.page, statements.count)):
        nodes = await explain(conn, statement.sql, statement.params)
        kinds = [n["Node Type"] for n in nodes]
        assert "Seq Scan" not in kinds, kinds
        indexes = {n["Index Name"] for n in nodes if "Index Name" in n}
        assert indexes, nodes
        assert all(name.startswith("executions_by_") for name in indexes), nodes
        if statement is statements.page and listing.sort == NEWEST_FIRST and not listing.status:
            # The default listing (newest first) walks its index in page
            # order: the first rows come without reading or sorting the rest.
            # (For other orders and filters a bitmap scan and a top-N sort can
            # be the cheaper plan; the planner decides.)
            assert "Sort" not in kinds, kinds
