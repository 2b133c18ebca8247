"""Schema migrations: numbered, applied once, also when replicas start together."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from service.store.postgres import PostgresStore
from service.store.postgres_migrations import MIGRATIONS
from service.store.protocol import StoreUnavailable
from tests.support.pg_rows import pending_execution, seed_retriever

pytestmark = pytest.mark.postgres

LATEST = MIGRATIONS[-1].version


async def applied_versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
    finally:
        await conn.close()


def test_migrations_are_numbered_one_to_n() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert all(m.statements and m.description for m in MIGRATIONS)


@pytest.mark.asyncio
async def test_open_migrates_a_fresh_database_and_reopening_changes_nothing(
    pg_store_url: str,
) -> None:
    for _ in range(2):
        store = PostgresStore(pg_store_url)
        await store.open()
        try:
            assert await store.schema_version() == LATEST
        finally:
            await store.close()
    assert sorted(await applied_versions(pg_store_url)) == list(range(1, LATEST + 1))


@pytest.mark.asyncio
async def test_replicas_opening_at_once_migrate_exactly_once(pg_store_url: str) -> None:
    stores = [PostgresStore(pg_store_url, min_size=0, max_size=2) for _ in range(8)]
    # Without the advisory lock, the losers of this race fail on "relation
    # already exists" or on the schema_migrations primary key.
    await asyncio.gather(*(store.open() for store in stores))
    try:
        assert sorted(await applied_versions(pg_store_url)) == list(range(1, LATEST + 1))
        # Every replica works on the one schema.
        retriever = await seed_retriever(stores[0])
        row = pending_execution(retriever)
        await stores[3].insert_execution(row)
        found = await asyncio.gather(
            *(s.get_execution(row.namespace_id, row.retriever_id, row.execution_id) for s in stores)
        )
        assert found == [row] * len(stores)
    finally:
        await asyncio.gather(*(store.close() for store in stores))


@pytest.mark.asyncio
async def test_a_schema_newer_than_this_build_is_refused(pg_store_url: str) -> None:
    store = PostgresStore(pg_store_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(pg_store_url)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, 'from the future')",
            LATEST + 1,
        )
    finally:
        await conn.close()
    with pytest.raises(StoreUnavailable, match="newer than this build"):
        await PostgresStore(pg_store_url).open()


@pytest.mark.asyncio
async def test_blobs_are_lz4_compressed_where_the_server_has_lz4(pg_store_url: str) -> None:
    store = PostgresStore(pg_store_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(pg_store_url)
    try:
        try:
            await conn.execute("SET default_toast_compression = lz4")
        except asyncpg.exceptions.InvalidParameterValueError:
            pytest.skip("this PostgreSQL server was built without lz4")
        methods = await conn.fetch(
            "SELECT attname, attcompression::text FROM pg_attribute"
            " WHERE attrelid = 'executions'::regclass AND attname IN ('detail', 'summary')"
        )
    finally:
        await conn.close()
    assert {r["attname"]: r["attcompression"] for r in methods} == {"detail": "l", "summary": "l"}
