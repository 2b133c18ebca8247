"""`pg_ctl stop -m immediate` (a crash, as far as the data goes) during writes
loses no acknowledged write: inserts and updates alike."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time

import pytest

from service.store.postgres import PostgresStore
from service.store.protocol import ExecutionRow, Retriever, StoreUnavailable
from tests.support.pg_cluster import PgCluster
from tests.support.pg_rows import pending_execution, seed_retriever

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROUNDS = 3
WRITERS = 4
UPDATES_PER_EXECUTION = 2
RECOVERY_DEADLINE_S = 10.0


@dataclasses.dataclass
class Ledger:
    """What the writers were told, per execution."""

    acknowledged: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> last ACKed etag
    in_doubt: dict[str, set[str]] = dataclasses.field(
        default_factory=dict
    )  # id -> etags tried since
    row_count: int = 0


def detail_for(etag: str) -> bytes:
    # The detail is derived from the etag, so a row that mixes two writes shows.
    return etag.encode() * 8


async def write_until_unavailable(
    store: PostgresStore, retriever: Retriever, ledger: Ledger
) -> None:
    while True:
        row = pending_execution(retriever)
        row = dataclasses.replace(row, detail=detail_for(row.etag))
        try:
            await store.insert_execution(row)
        except StoreUnavailable:
            return
        ledger.acknowledged[row.execution_id] = row.etag
        ledger.in_doubt[row.execution_id] = set()
        ledger.row_count += 1
        for step in range(UPDATES_PER_EXECUTION):
            etag = f'"{secrets.token_hex(8)}"'
            ledger.in_doubt[row.execution_id].add(etag)

            def advance(current: ExecutionRow, etag: str = etag, step: int = step) -> ExecutionRow:
                return dataclasses.replace(
                    current,
                    status="processing",
                    credits_used=float(step + 1),
                    detail=detail_for(etag),
                    etag=etag,
                )

            try:
                await store.update_execution(
                    row.namespace_id, row.retriever_id, row.execution_id, advance
                )
            except StoreUnavailable:
                return
            ledger.acknowledged[row.execution_id] = etag
            ledger.in_doubt[row.execution_id] = set()


async def wait_until_healthy(store: PostgresStore) -> None:
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while not await store.healthy():
        assert time.monotonic() < deadline, "the store did not reconnect"
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_an_immediate_stop_during_writes_loses_no_acknowledged_write(
    own_pg_cluster: PgCluster,
) -> None:
    store = PostgresStore(own_pg_cluster.url(), max_size=WRITERS, command_timeout=5.0)
    await store.open()
    try:
        retriever = await seed_retriever(store)
        for _ in range(ROUNDS):
            ledger = Ledger()
            writers = [
                asyncio.create_task(write_until_unavailable(store, retriever, ledger))
                for _ in range(WRITERS)
            ]
            await asyncio.sleep(0.5)
            await asyncio.to_thread(own_pg_cluster.stop, "immediate")
            # Every writer notices the outage (as StoreUnavailable) and stops.
            await asyncio.wait_for(asyncio.gather(*writers), timeout=10)
            assert ledger.row_count >= WRITERS, "too few writes to prove anything"

            await asyncio.to_thread(own_pg_cluster.start)  # replays the WAL
            await wait_until_healthy(store)
            for execution_id, etag in ledger.acknowledged.items():
                stored = await store.get_execution(
                    retriever.namespace_id, retriever.id, execution_id
                )
                assert stored is not None, f"acknowledged {execution_id} is gone"
                # The last acknowledged write, or one that failed in flight but
                # committed anyway; never an older one.
                assert stored.etag in {etag} | ledger.in_doubt[execution_id]
                assert stored.detail == detail_for(stored.etag)
    finally:
        if not own_pg_cluster.is_running():
            own_pg_cluster.start()
        await store.close()
