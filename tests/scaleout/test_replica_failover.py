"""Three replicas, two gateways, one PostgreSQL: one replica is killed (SIGKILL)
and another stopped (SIGTERM) under load, and no client notices.

REST lookups alternate between the gateways (each configured with every
replica); gRPC writers use a round_robin channel over every replica with the
gateway's retry policy. Every lookup must be answered as if nothing happened
(200, or 404 for an unknown execution), and every acknowledged write must be
in the database afterwards.

What makes this work (see docs/deployment.md): gRPC retries UNAVAILABLE on
another replica when the call was not yet committed (a killed replica never
sent response headers), and a replica stopping gracefully finishes its
in-flight calls while new ones go elsewhere.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from pathlib import Path

import aiohttp
import pytest

from service.cluster import ClusterSettings, running_cluster
from tests.running_service import stubs
from tests.scaleout.fleet import (
    LookupLog,
    WriteLog,
    balanced_channel,
    demo_auth,
    lookup_loop,
    missing_writes,
    seed_demo,
    write_loop,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

READERS = 8
WRITERS = 3
LOAD_S = 7.0
KILL_AT_S = 2.0
TERMINATE_AT_S = 4.0
LOOKUP_TIMEOUT_S = 5.0


@pytest.mark.asyncio
async def test_lookups_and_writes_survive_a_killed_and_a_stopped_replica(
    pg_store_url: str, tmp_path: Path
) -> None:
    demo = await seed_demo(pg_store_url, tmp_path)
    settings = ClusterSettings(
        store_url=pg_store_url,
        replicas=3,
        gateways=2,
        # As fast as it can with one key: measures failover, not the per-key rate limit.
        service_args=(
            "--drain-seconds",
            "0.5",
            "--grace-seconds",
            "5",
            "--rate-limit-per-second",
            "0",
        ),
        gateway_args=("--access-log", "false"),
    )
    with (tmp_path / "cluster.log").open("w") as cluster_log:
        async with running_cluster(settings, cluster_log) as cluster:
            gateways = itertools.cycle([f"http://{child.address}" for child in cluster.gateways])
            lookups, writes = LookupLog(), WriteLog()
            stop = asyncio.Event()
            metadata = demo_auth(demo)
            channel = balanced_channel([child.address for child in cluster.services])
            async with aiohttp.ClientSession() as http, channel:
                load = [
                    asyncio.create_task(
                        lookup_loop(http, gateways, demo, lookups, stop, LOOKUP_TIMEOUT_S)
                    )
                    for _ in range(READERS)
                ]
                load += [
                    asyncio.create_task(
                        write_loop(stubs(channel), metadata, demo.retriever.name, writes, stop)
                    )
                    for _ in range(WRITERS)
                ]
                killed, terminated, survivor = cluster.services
                await asyncio.sleep(KILL_AT_S)
                killed.process.send_signal(signal.SIGKILL)
                await asyncio.sleep(TERMINATE_AT_S - KILL_AT_S)
                terminated.process.send_signal(signal.SIGTERM)
                await asyncio.sleep(LOAD_S - TERMINATE_AT_S)
                stop.set()
                await asyncio.wait_for(asyncio.gather(*load), LOOKUP_TIMEOUT_S * 2)

                assert await asyncio.wait_for(terminated.exited(), 10) == 0
                assert await killed.exited() == -signal.SIGKILL
                assert survivor.running
                missing = await missing_writes(
                    stubs(channel), metadata, demo.retriever.name, writes
                )

    print(f"lookups {dict(lookups.outcomes)}, slowest {lookups.slowest_s:.3f} s")
    print(f"writes: {writes.completed} completed, errors {dict(writes.errors)}")
    assert lookups.failures == [], "\n".join(lookups.failures[:20])
    assert lookups.outcomes["200"] > 100
    assert lookups.outcomes["404"] > 30
    assert missing == [], missing
    assert writes.completed > 20
    assert not writes.errors, writes.errors
