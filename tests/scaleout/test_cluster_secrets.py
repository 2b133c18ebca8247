"""The store's password never shows in a process's arguments or in a log line.

`execgate cluster` is given the URL in a file (`EXECGATE_STORE_FILE`); its replicas get
it in their environment. Every process's /proc/<pid>/cmdline and everything the cluster
printed are searched for the password.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest

from tests.support.fleet import cluster_children, seed_demo

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.asyncio
async def test_cluster_children_get_the_store_url_outside_their_arguments(
    pg_store_url: str, tmp_path: Path
) -> None:
    password = unquote(urlsplit(pg_store_url).password or "")
    assert len(password) >= 8, "the harness's URL has a password"
    demo = await seed_demo(pg_store_url, tmp_path)
    url_file = tmp_path / "store-url"
    url_file.write_text(pg_store_url + "\n")
    url_file.chmod(0o600)
    environ = {k: v for k, v in os.environ.items() if k != "EXECGATE_STORE"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "cluster", "--replicas", "2", "--gateways", "1",
        env={**environ, "EXECGATE_STORE_FILE": str(url_file)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = asyncio.create_task(process.stderr.read())
    printed: list[str] = []
    try:
        children = await cluster_children(process.stdout, stderr, 3, printed)
        gateway = children["gateway-1"][0]
        for pid in (process.pid, *(child_pid for _, child_pid in children.values())):
            assert password not in _cmdline(pid)
            assert "postgresql://" not in _cmdline(pid)
        # The replicas did reach the store (the URL came through their environment).
        headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
        path = f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions['failed']}"
        async with aiohttp.ClientSession(headers=headers) as http, http.get(gateway + path) as r:
            assert r.status == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = "".join(printed) + (await process.stdout.read()).decode() + (await stderr).decode()
    assert "[service-1]" in output  # the replicas' own log lines are in it
    assert password not in output
