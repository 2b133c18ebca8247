"""An acknowledged write survives `kill -9` of the service process (or of all its workers).

Each round drives the write path over gRPC (start, one stage, complete)
against a child `python -m service serve`, kills it with SIGKILL at a random
moment with calls in flight, restarts it on the same SQLite file, and reads
back every execution whose write had been acknowledged, in the state that
was acknowledged (or a later one). With `--workers 2` several processes write
the one SQLite file at once, and all of them are killed together.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from pathlib import Path
from typing import TypeAlias

import grpc
import pytest
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from execgate.type.v1 import raw_json_pb2

from service import admin
from service.store import open_store
from tests.running_service import Metadata, Stubs, auth, stubs
from tests.service.service_process import ServiceProcess, running

ROUNDS = 3
WRITERS = 4
Status: TypeAlias = execution_pb2.ExecutionStatus.ValueType


async def write_until_killed(
    calls: Stubs, metadata: Metadata, acknowledged: dict[str, Status]
) -> None:
    """Start → report → complete in a loop, recording each acknowledged state."""
    try:
        while True:
            started = await calls.writer.StartExecution(
                writer_pb2.StartExecutionRequest(retriever_id="search", total_stages=1),
                metadata=metadata,
            )
            execution_id = started.execution.execution_id
            acknowledged[execution_id] = execution_pb2.EXECUTION_STATUS_PENDING
            await calls.writer.ReportStageProgress(
                writer_pb2.ReportStageProgressRequest(
                    retriever_id="search",
                    execution_id=execution_id,
                    stage_name="feature_search",
                    statistics=execution_pb2.StageStatistics(input_count=10, output_count=2),
                    stages_completed=1,
                ),
                metadata=metadata,
            )
            acknowledged[execution_id] = execution_pb2.EXECUTION_STATUS_PROCESSING
            await calls.writer.CompleteExecution(
                writer_pb2.CompleteExecutionRequest(
                    retriever_id="search",
                    execution_id=execution_id,
                    documents=[raw_json_pb2.RawJson(json='{"document_id":"d"}')] * 20,
                ),
                metadata=metadata,
            )
            acknowledged[execution_id] = execution_pb2.EXECUTION_STATUS_COMPLETED
    except grpc.aio.AioRpcError as error:
        if error.code() is not grpc.StatusCode.UNAVAILABLE:  # the kill, and nothing else
            raise


async def seed_tenant(store_url: str) -> str:
    store = open_store(store_url)
    await store.open()
    try:
        await admin.create_namespace(store, "durable")
        await admin.create_retriever(store, "durable", "search")
        return (await admin.create_api_key(store, ["durable"], admin.PERMISSIONS)).secret
    finally:
        await store.close()


async def all_workers_ready(service: ServiceProcess, workers: int) -> None:
    if workers == 1:
        return
    for _ in range(1500):
        if '"all workers ready"' in service.log.read_text():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(service.log.read_text())


def kill_everything(service: ServiceProcess) -> None:
    """SIGKILL the service; with workers, every worker at once and the supervisor too."""
    workers = [
        entry["pid"]
        for line in service.log.read_text().splitlines()
        if line.startswith("{") and (entry := json.loads(line)).get("message") == "worker started"
    ]
    if workers:
        service.process.send_signal(signal.SIGSTOP)  # no restarts, no SIGTERM to workers
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
    service.process.send_signal(signal.SIGKILL)
    service.process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize("workers", [1, 2])
async def test_acknowledged_writes_survive_sigkill(tmp_path: Path, workers: int) -> None:
    store_url = f"sqlite:///{tmp_path / 'durable.db'}"
    metadata = auth(await seed_tenant(store_url))
    acknowledged: dict[str, Status] = {}
    rng = random.Random()
    for round_number in range(ROUNDS):
        log = tmp_path / f"round-{round_number}.log"
        with running(store_url, log, "--workers", str(workers)) as service:
            await all_workers_ready(service, workers)
            # A connection per writer (no shared subchannel): with workers, the kernel
            # spreads them, so several processes write the one SQLite file at once.
            options = [("grpc.use_local_subchannel_pool", 1)]
            channels = [
                grpc.aio.insecure_channel(service.address, options=options) for _ in range(WRITERS)
            ]
            writers = [
                asyncio.create_task(write_until_killed(stubs(channel), metadata, acknowledged))
                for channel in channels
            ]
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            kill_everything(service)
            await asyncio.wait_for(asyncio.gather(*writers), timeout=20)
            for channel in channels:
                await channel.close()
    assert len(acknowledged) > ROUNDS * WRITERS

    with running(store_url, tmp_path / "verify.log") as service:
        async with grpc.aio.insecure_channel(service.address) as channel:
            calls = stubs(channel)
            for execution_id, status in acknowledged.items():
                detail = await calls.reader.GetExecution(
                    service_pb2.GetExecutionRequest(
                        retriever_id="search", execution_id=execution_id
                    ),
                    metadata=metadata,
                )
                assert detail.status >= status, execution_id
                if status == execution_pb2.EXECUTION_STATUS_COMPLETED:
                    assert len(json.loads(detail.documents.json)) == 20
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=15) == 0
