"""PostgreSQL goes away under the replicas (`pg_ctl stop -m immediate`, as in a
crash or a failover) and comes back.

Reads through the gateway turn into prompt 503 envelopes with Retry-After (no
hang, no 500, no driver text) and turn back into 200s by themselves within
seconds of the restart; writes over gRPC fail with UNAVAILABLE while it is
down, and no acknowledged write is lost.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
import pytest_asyncio

from service.cluster import Cluster, ClusterSettings, running_cluster
from service.demo import DemoData
from tests.support.fleet import (
    WriteLog,
    balanced_channel,
    demo_auth,
    missing_writes,
    seed_demo,
    write_loop,
)
from tests.support.pg_cluster import PgCluster, run_sql, with_database
from tests.support.running_service import stubs

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DEADLINE_S = 3.0  # the gateway's upstream deadline
# From restart to the first 200: the replicas check their store every 2 s
# (health SERVING again), then the gateway routes to them at once.
RECOVERY_S = 6.0
# Nothing of the driver's or gRPC's own error text reaches the client.
LEAKS = (b"asyncpg", b"postgres", b"errno", b"refused", b"traceback", b"127.0.0.1", b"backends")


@dataclass
class Fleet:
    pg: PgCluster
    cluster: Cluster
    demo: DemoData


@pytest_asyncio.fixture
async def fleet(own_pg_cluster: PgCluster, tmp_path: Path) -> AsyncIterator[Fleet]:
    """Two replicas and a gateway on a fresh database of the module's own server."""
    database = f"outage_{secrets.token_hex(4)}"
    await asyncio.to_thread(run_sql, own_pg_cluster.url(), f'CREATE DATABASE "{database}"')
    store_url = with_database(own_pg_cluster.url(), database)
    demo = await seed_demo(store_url, tmp_path)
    settings = ClusterSettings(
        store_url=store_url,
        replicas=2,
        gateways=1,
        gateway_args=("--default-timeout", str(DEADLINE_S), "--access-log", "false"),
    )
    try:
        with (tmp_path / "cluster.log").open("w") as log:
            async with running_cluster(settings, log) as cluster:
                yield Fleet(own_pg_cluster, cluster, demo)
    finally:
        if not own_pg_cluster.is_running():
            await asyncio.to_thread(own_pg_cluster.start)


@dataclass(frozen=True)
class Answer:
    at: float  # monotonic time the answer arrived
    seconds: float  # how long it took
    status: int
    retry_after: str | None
    body: bytes


async def read_until(
    http: aiohttp.ClientSession, url: str, answers: list[Answer], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        started = time.monotonic()
        async with http.get(url) as response:
            body = await response.read()
        done = time.monotonic()
        answers.append(
            Answer(done, done - started, response.status, response.headers.get("Retry-After"), body)
        )
        if response.status != 200:
            await asyncio.sleep(0.02)


def is_unavailable_envelope(answer: Answer) -> bool:
    if answer.status != 503 or answer.retry_after is None or not answer.retry_after.isdigit():
        return False
    envelope = orjson.loads(answer.body)
    return bool(
        envelope["success"] is False
        and envelope["status"] == 503
        and envelope["error"]["code"] == "backend_unavailable"
        and not any(word in answer.body.lower() for word in LEAKS)
    )


@pytest.mark.asyncio
async def test_reads_answer_503_while_the_database_is_down_and_200_soon_after(
    fleet: Fleet,
) -> None:
    demo = fleet.demo
    gateway = fleet.cluster.gateways[0].address
    execution = demo.executions["completed_10"]
    url = f"http://{gateway}/v1/retrievers/{demo.retriever.name}/executions/{execution}"
    headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
    answers: list[Answer] = []
    stop = asyncio.Event()
    async with aiohttp.ClientSession(headers=headers) as http:
        readers = [asyncio.create_task(read_until(http, url, answers, stop)) for _ in range(4)]
        try:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(fleet.pg.stop, "immediate")
            stopped = time.monotonic()
            await asyncio.sleep(2.0)
            await asyncio.to_thread(fleet.pg.start)
            restarted = time.monotonic()
            while not any(a.status == 200 and a.at > restarted for a in answers):
                assert time.monotonic() - restarted < RECOVERY_S, "the gateway did not recover"
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await asyncio.gather(*readers)

    recovered = min(a.at for a in answers if a.status == 200 and a.at > restarted)
    print(f"{len(answers)} answers; first 200 {recovered - restarted:.2f} s after the restart")
    assert all(a.status == 200 for a in answers if a.at < stopped - 0.1)
    during = [a for a in answers if stopped + 0.2 < a.at < restarted]
    assert during, "no request was answered while the database was down"
    assert all(is_unavailable_envelope(a) for a in during), during[:3]
    assert all(a.status == 200 or is_unavailable_envelope(a) for a in answers)
    assert max(a.seconds for a in answers) < DEADLINE_S + 0.5, "a request hung"
    # Once the first 200 arrives, the replicas' pools follow within moments.
    assert all(a.status == 200 for a in answers if a.at > recovered + 0.5)


@pytest.mark.asyncio
async def test_an_immediate_stop_during_grpc_writes_loses_no_acknowledged_write(
    fleet: Fleet,
) -> None:
    demo = fleet.demo
    metadata = demo_auth(demo)
    writes = WriteLog()
    stop = asyncio.Event()
    async with balanced_channel([c.address for c in fleet.cluster.services]) as channel:
        writers = [
            asyncio.create_task(
                write_loop(stubs(channel), metadata, demo.retriever.name, writes, stop)
            )
            for _ in range(4)
        ]
        try:
            await asyncio.sleep(1.0)
            before_crash = writes.completed
            await asyncio.to_thread(fleet.pg.stop, "immediate")
            await asyncio.sleep(1.0)
            await asyncio.to_thread(fleet.pg.start)  # replays the WAL
            restarted = writes.completed
            await asyncio.sleep(2.0)
        finally:
            stop.set()
            await asyncio.gather(*writers)
        missing = await missing_writes(stubs(channel), metadata, demo.retriever.name, writes)

    print(f"writes: {writes.completed} completed, errors {dict(writes.errors)}")
    assert before_crash > 4, "too few writes before the crash to prove anything"
    assert writes.completed > restarted, "writes did not resume after the restart"
    assert set(writes.errors) == {"UNAVAILABLE"}, writes.errors
    assert missing == [], missing
