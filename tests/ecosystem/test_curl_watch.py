"""The README's `curl -N` watch of the demo's in-flight execution while `demo drive` moves it.

curl (the binary, as a user runs it) reads the gateway's stream of the real
service's `WatchExecution`: Server-Sent Events, then NDJSON, then a resume with
`Last-Event-ID`; the writes come from `service.demo_drive`, the code behind
`execgate demo drive`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from service import demo_drive
from tests.support.gateway_harness import RunningGateway
from tests.support.running_service import RunningService

# What a watcher of the demo's in-flight execution sees after the snapshot.
DRIVEN = [
    "stage_progress",
    "stage_completed",
    "stage_started",
    "budget_changed",
    "stage_progress",
    "stage_completed",
    "budget_changed",
    "completed",
]

pytestmark = [
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
    pytest.mark.slow,  # starts curl processes
]


@asynccontextmanager
async def curl_watch(
    gateway: RunningGateway, service: RunningService, *headers: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The README's command: `curl -N "${AUTH[@]}" …/executions/$EXECGATE_DEMO_PROCESSING:watch`.

    curl is killed on the way out if it still runs (a failed assert or a timeout).
    """
    demo = service.demo
    url = (
        f"{gateway.base_url}/v1/retrievers/{demo.retriever.name}"
        f"/executions/{demo.executions['processing']}:watch"
    )
    auth = ["-H", f"Authorization: Bearer {demo.api_key}"]
    auth += ["-H", f"X-Namespace: {demo.namespace.name}"]
    extra = [part for header in headers for part in ("-H", header)]
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-N", "--max-time", "20", *auth, *extra, url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def output_after_drive(process: asyncio.subprocess.Process, service: RunningService) -> str:
    async with asyncio.timeout(10.0):
        while not service.server.watch_hub.watchers:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.02)
    await demo_drive.drive(
        service.store, service.demo, "processing", interval=0.02, say=lambda _: None
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 20.0)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


@pytest.mark.asyncio
async def test_curl_sees_the_execution_move_as_server_sent_events(
    gateway: RunningGateway, running_service: RunningService
) -> None:
    async with curl_watch(gateway, running_service, "Accept: text/event-stream") as process:
        output = await output_after_drive(process, running_service)
    blocks = [block for block in output.split("\n\n") if block.strip()]
    names = [block.split("\n")[0].removeprefix("event: ") for block in blocks]
    assert names == ["snapshot", *DRIVEN]
    ids = [block.split("\n")[1].removeprefix("id: ") for block in blocks]
    assert ids == [str(n) for n in range(len(blocks))]
    final = json.loads(blocks[-1].split("data: ", 1)[1])
    assert final["completed"]["status"] == "completed"  # the REST rendering, not protojson

    # Resume after event 4: the rest only, as NDJSON (curl's default Accept is */*).
    async with curl_watch(gateway, running_service, "Last-Event-ID: 4") as resumed:
        stdout, stderr = await asyncio.wait_for(resumed.communicate(), 20.0)
    assert resumed.returncode == 0, stderr.decode()
    lines = [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    assert [line["result"]["event_id"] for line in lines] == [str(n) for n in range(5, 9)]
    assert lines[-1]["result"]["completed"]["status"] == "completed"


@pytest.mark.asyncio
async def test_curl_sees_the_execution_move_as_ndjson(
    gateway: RunningGateway, running_service: RunningService
) -> None:
    async with curl_watch(gateway, running_service) as process:
        output = await output_after_drive(process, running_service)
    results = [json.loads(line)["result"] for line in output.splitlines() if line.strip()]
    names = [next(k for k, v in r.items() if k != "event_id" and v is not None) for r in results]
    assert names == ["snapshot", *DRIVEN]
