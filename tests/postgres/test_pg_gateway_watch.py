"""WatchExecution over REST on PostgreSQL: watcher on one replica, writer on another.

Two service replicas on one database (each its own pool and LISTEN
connection); the gateway talks to replica A only, the writer to replica B, so
the REST watcher learns of each change through PostgreSQL's NOTIFY.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from gateway.config import GatewayConfig
from service.store.postgres import PostgresStore
from tests.gateway.app.gateway_harness import running_gateway
from tests.gateway.e2e.test_gateway_watch_e2e import NDJSON, SSE, watch_lifecycle
from tests.running_service import auth, start_service, stubs
from tests.service.watching import Driver

pytestmark = pytest.mark.postgres


@pytest.mark.asyncio
@pytest.mark.parametrize("accept", [SSE, NDJSON])
async def test_a_rest_watcher_on_one_replica_sees_a_writer_on_another(
    pg_store_url: str, tmp_path: Path, accept: str
) -> None:
    async with (
        start_service(tmp_path, store=PostgresStore(pg_store_url)) as replica_a,
        start_service(tmp_path, store=PostgresStore(pg_store_url)) as replica_b,
        grpc.aio.insecure_channel(replica_b.address) as channel_b,
    ):
        config = GatewayConfig(port=0, backend=replica_a.address, shutdown_timeout_s=2.0)
        async with running_gateway(config) as gateway:
            # As tests/postgres/test_pg_watch.py: replica A's key, the retriever by name.
            writer = Driver(
                stubs(channel_b), auth(replica_a.demo.api_key), replica_b.demo.retriever.name
            )
            await watch_lifecycle(gateway, replica_a, writer, accept)
        assert replica_a.server.watch_hub.watchers == 0
