"""WatchExecution on PostgreSQL: a watcher on one replica sees what a writer on another writes.

Two servers, each with its own store (pool and LISTEN connection) on the same
database, as two replicas would be. The write goes to replica B, whose own
watch hub is not the watcher's: replica A learns of it only through
PostgreSQL's NOTIFY.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import grpc
import pytest

from service.store.postgres import PostgresStore
from service.store.postgres_changes import CHANGES_CHANNEL, NotifyListener
from tests.support.running_service import auth, start_service, stubs
from tests.support.watching import DRIVEN_KINDS, Driver, events_until, kind, watch

pytestmark = pytest.mark.postgres


@pytest.mark.asyncio
async def test_a_watcher_on_one_replica_sees_a_writer_on_another(
    pg_store_url: str, tmp_path: Path
) -> None:
    async with (
        start_service(tmp_path, store=PostgresStore(pg_store_url)) as replica_a,
        start_service(tmp_path, store=PostgresStore(pg_store_url)) as replica_b,
        grpc.aio.insecure_channel(replica_a.address) as channel_a,
        grpc.aio.insecure_channel(replica_b.address) as channel_b,
    ):
        metadata = auth(replica_a.demo.api_key)
        writer = Driver(stubs(channel_b), metadata, replica_b.demo.retriever.name)
        execution_id = await writer.start()
        call = watch(stubs(channel_a), metadata, replica_a.demo.retriever.id, execution_id)
        (snapshot,) = await events_until(call, 1)
        assert snapshot.snapshot.execution.execution_id == execution_id

        drive = asyncio.create_task(writer.run(interval=0.05))
        async with asyncio.timeout(15.0):
            events = [event async for event in call]
        await drive
        assert [kind(event) for event in events] == DRIVEN_KINDS
        assert await call.code() is grpc.StatusCode.OK
        assert replica_a.server.watch_hub.watchers == 0

        # Resume on replica B from the middle: the same log, whichever replica reads it.
        resumed = watch(stubs(channel_b), metadata, replica_b.demo.retriever.id, execution_id, "4")
        rest = [event async for event in resumed]
        assert [kind(event) for event in rest] == DRIVEN_KINDS[4:]


@pytest.mark.asyncio
async def test_the_change_listener_reconnects_and_says_changes_may_have_been_missed(
    pg_store_url: str,
) -> None:
    heard: asyncio.Queue[str | None] = asyncio.Queue()
    listener = await NotifyListener.start(
        pg_store_url, heard.put_nowait, connect_timeout=5, retry=0
    )
    admin = await asyncpg.connect(pg_store_url)
    try:
        # The server ends the listening session (a failover or an administrator would).
        (pid,) = await admin.fetchrow(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%' "
            "AND pid <> pg_backend_pid() ORDER BY backend_start DESC LIMIT 1"
        )
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        async with asyncio.timeout(10.0):
            assert await heard.get() is None  # reconnected: anything may have changed
        await admin.execute("SELECT pg_notify($1, 'exec_after')", CHANGES_CHANNEL)
        async with asyncio.timeout(5.0):
            assert await heard.get() == "exec_after"
    finally:
        await admin.close()
        await listener.close()
