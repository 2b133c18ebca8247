"""The cluster restarts a child that dies, on the same address, and says which and why."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from service.cluster import ClusterSettings, Member, running_cluster

pytestmark = pytest.mark.slow


async def _restarted(member: Member, deadline_s: float) -> None:
    """Until the cluster has started `member` again and it is ready (polled: the cluster
    has no event to await)."""

    async def wait() -> None:
        while member.restarts < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), deadline_s)


@pytest.mark.asyncio
async def test_a_killed_replica_and_gateway_come_back_on_their_addresses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXECGATE_UVLOOP", "0")
    settings = ClusterSettings(
        store_url=f"sqlite:///{tmp_path / 'cluster.db'}", replicas=1, gateways=1, restart=True
    )
    caplog.set_level(logging.INFO, logger="execgate.cluster")
    async with running_cluster(settings, io.StringIO()) as cluster:
        (service,) = cluster.services
        (gateway,) = cluster.gateways
        addresses, pids = (service.address, gateway.address), (service.pid, gateway.pid)

        os.kill(service.pid, signal.SIGKILL)
        await _restarted(service, 30)
        gateway.process.send_signal(signal.SIGTERM)  # a clean exit is restarted too
        await _restarted(gateway, 30)

        assert (service.address, gateway.address) == addresses
        assert (service.pid, gateway.pid) != pids
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the gateway's channel reconnects to the new replica
                async with http.get(f"http://{gateway.address}/readyz") as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.1)
            assert response.status == 200
    said = [record.getMessage() for record in caplog.records]
    assert any(f"service-1 exited with status -{signal.SIGKILL.value}" in m for m in said), said
    assert any("gateway-1 exited with status 0" in message for message in said), said
    assert any(message.startswith("service-1 restarted on") for message in said), said
