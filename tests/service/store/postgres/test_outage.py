"""The server goes away under load: reads fail fast, and the store heals itself."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from service.store.postgres import PostgresStore
from service.store.protocol import StoreUnavailable
from tests.support.pg_cluster import PgCluster
from tests.support.pg_rows import pending_execution, seed_retriever

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TIMEOUT_S = 2.0  # connect, acquire and command timeouts alike
READERS = 4
RECOVERY_DEADLINE_S = 10.0


@pytest.mark.asyncio
async def test_reads_fail_fast_while_the_server_is_down_and_recover_after_restart(
    own_pg_cluster: PgCluster,
) -> None:
    store = PostgresStore(
        own_pg_cluster.url(),
        max_size=READERS,
        connect_timeout=TIMEOUT_S,
        acquire_timeout=TIMEOUT_S,
        command_timeout=TIMEOUT_S,
    )
    await store.open()
    row = pending_execution(await seed_retriever(store))
    await store.insert_execution(row)

    outcomes: Counter[str] = Counter()
    slowest = 0.0
    last_success = 0.0
    stop = asyncio.Event()

    async def reader() -> None:
        nonlocal slowest, last_success
        while not stop.is_set():
            started = time.monotonic()
            try:
                found = await store.get_execution(
                    row.namespace_id, row.retriever_id, row.execution_id
                )
            except StoreUnavailable:
                outcomes["unavailable"] += 1
                await asyncio.sleep(0.01)  # do not spin on a refused port
            else:
                assert found == row
                outcomes["ok"] += 1
                last_success = time.monotonic()
            slowest = max(slowest, time.monotonic() - started)

    readers = [asyncio.create_task(reader()) for _ in range(READERS)]
    try:
        await asyncio.sleep(0.3)
        assert outcomes["ok"] > 0
        await asyncio.to_thread(own_pg_cluster.stop, "immediate")
        down_since = time.monotonic()
        await asyncio.sleep(1.0)
        assert last_success < down_since, "a read succeeded against a stopped server"
        assert outcomes["unavailable"] > 0
        assert not await store.healthy()

        await asyncio.to_thread(own_pg_cluster.start)
        restarted = time.monotonic()
        while last_success < restarted:
            assert time.monotonic() - restarted < RECOVERY_DEADLINE_S, "the store did not recover"
            await asyncio.sleep(0.05)
        failures_after_recovery = outcomes["unavailable"]
        await asyncio.sleep(0.5)
        # Once one read succeeds, the rest of the pool follows without errors.
        assert outcomes["unavailable"] - failures_after_recovery <= READERS
        assert await store.healthy()
    finally:
        stop.set()
        await asyncio.gather(*readers)
        if not own_pg_cluster.is_running():
            own_pg_cluster.start()
        await store.close()
    # Never a hang: every call ended within about one timeout.
    assert slowest < TIMEOUT_S + 0.5, f"a read took {slowest:.2f}s"
