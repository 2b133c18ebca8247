"""`python -m service cluster` as a user runs it: it prints every address, the
gateways answer through the replicas, and SIGTERM stops every child, gateways
first, with exit status 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.fleet import cluster_children, seed_demo

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.asyncio
async def test_cluster_command_starts_replicas_and_gateways_and_stops_them(
    pg_store_url: str, tmp_path: Path
) -> None:
    demo = await seed_demo(pg_store_url, tmp_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "cluster",
        "--replicas", "2", "--gateways", "2", "--store", pg_store_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = asyncio.create_task(process.stderr.read())
    children: dict[str, tuple[str, int]] = {}
    try:
        children = await cluster_children(process.stdout, stderr, 4)
        assert sorted(children) == ["gateway-1", "gateway-2", "service-1", "service-2"]
        execution = demo.executions["completed_10"]
        headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
        async with aiohttp.ClientSession(headers=headers) as http:
            for gateway in ("gateway-1", "gateway-2"):
                base = children[gateway][0]
                assert base.startswith("http://127.0.0.1:")
                path = f"/v1/retrievers/{demo.retriever.name}/executions/{execution}"
                for _ in range(4):  # round-robin: both replicas answer
                    async with http.get(base + path) as response:
                        assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = (await stderr).decode()
    assert not [name for name, (_, pid) in children.items() if process_exists(pid)]
    # Gateways stop before the replicas they still need for in-flight requests.
    lines = log.splitlines()
    last_gateway_line = max(n for n, line in enumerate(lines) if line.startswith("[gateway-"))
    assert "gateway stopped" in lines[last_gateway_line]
    replicas_stopping = [
        n
        for n, line in enumerate(lines)
        if line.startswith("[service-") and "shutting down" in line
    ]
    assert len(replicas_stopping) == 2
    assert last_gateway_line < min(replicas_stopping)
