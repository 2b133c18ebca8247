"""A bounded pool and bounded statements: waiting turns into StoreUnavailable, never a hang."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import asyncpg
import pytest

from service.store.postgres import PostgresStore
from service.store.protocol import ExecutionRow, StoreUnavailable
from tests.support.pg_cluster import free_port
from tests.support.pg_rows import pending_execution, seed_retriever

pytestmark = pytest.mark.postgres

ACQUIRE_TIMEOUT_S = 0.5
COMMAND_TIMEOUT_S = 2.0


async def wait_for_lock_waiter(conn: asyncpg.Connection, deadline_s: float = 5.0) -> None:
    end = time.monotonic() + deadline_s
    while not await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
        assert time.monotonic() < end, "the store's update never queued on the row lock"
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_an_exhausted_pool_and_a_stuck_statement_answer_unavailable_in_time(
    pg_store_url: str,
) -> None:
    store = PostgresStore(
        pg_store_url,
        min_size=1,
        max_size=1,
        acquire_timeout=ACQUIRE_TIMEOUT_S,
        command_timeout=COMMAND_TIMEOUT_S,
    )
    await store.open()
    blocker = await asyncpg.connect(pg_store_url)
    try:
        row = pending_execution(await seed_retriever(store))
        await store.insert_execution(row)

        # Another session holds the row lock, so the store's update takes the
        # pool's only connection and waits on the lock.
        locked = blocker.transaction()
        await locked.start()
        await blocker.execute(
            "SELECT 1 FROM executions WHERE execution_id = $1 FOR UPDATE", row.execution_id
        )
        started = time.monotonic()

        def touch(current: ExecutionRow) -> ExecutionRow:
            return dataclasses.replace(current, etag='"touched"')

        stuck = asyncio.create_task(
            store.update_execution(row.namespace_id, row.retriever_id, row.execution_id, touch)
        )
        await wait_for_lock_waiter(blocker)

        # No free connection: the read gives up after the acquire timeout.
        read_started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.get_execution(row.namespace_id, row.retriever_id, row.execution_id)
        read_waited = time.monotonic() - read_started
        assert ACQUIRE_TIMEOUT_S * 0.8 <= read_waited < ACQUIRE_TIMEOUT_S + 1.0

        # The blocked statement gives up after the command timeout.
        with pytest.raises(StoreUnavailable):
            await stuck
        assert time.monotonic() - started < COMMAND_TIMEOUT_S + ACQUIRE_TIMEOUT_S + 1.0
        await locked.rollback()

        # Nothing changed, and the pool serves again.
        assert (
            await store.get_execution(row.namespace_id, row.retriever_id, row.execution_id) == row
        )
    finally:
        await blocker.close()
        await store.close()


@pytest.mark.asyncio
async def test_a_server_that_is_not_there_answers_unavailable() -> None:
    store = PostgresStore(f"postgresql://nobody@127.0.0.1:{free_port()}/none", connect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.open()
    assert time.monotonic() - started < 2.0
    assert not await store.healthy()
