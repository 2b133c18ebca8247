"""What the scale-out tests share: seeding, REST lookups, the gRPC write loop.

Each helper records what it was told (answers, acknowledged writes) so that
the tests can compare it with what the store holds afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import aiohttp
import grpc
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from execgate.type.v1 import raw_json_pb2

from gateway.config import GatewayConfig
from gateway.upstream import channel_options
from service import ids
from service.demo import DemoData, seed
from service.store import open_store
from tests.support.running_service import Metadata, Stubs, auth

Status: TypeAlias = execution_pb2.ExecutionStatus.ValueType
WRITE_TIMEOUT_S = 5.0
# What `execgate cluster` prints for each child: "service-1  127.0.0.1:PORT  pid N".
ADDRESS_LINE = re.compile(r"^(service|gateway)-(\d+) +(\S+) +pid (\d+)$")
DOCUMENTS = 5


async def seed_demo(store_url: str, directory: Path) -> DemoData:
    """The demo namespace, retriever, key and executions, written straight to the store."""
    store = open_store(store_url)
    await store.open()
    try:
        return await seed(store, directory / "demo-key")
    finally:
        await store.close()


def balanced_channel(addresses: Sequence[str]) -> grpc.aio.Channel:
    """A channel over every replica with exactly the gateway's settings
    (round_robin, UNAVAILABLE retried, keepalive): what a gRPC writer would use."""
    config = GatewayConfig(backend=",".join(addresses))
    return grpc.aio.insecure_channel(config.grpc_target, options=channel_options(config))


@dataclass
class LookupLog:
    """REST lookups by outcome; `failures` keeps the unexpected answers."""

    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slowest_s: float = 0.0


async def lookup_loop(
    http: aiohttp.ClientSession,
    gateways: Iterator[str],
    demo: DemoData,
    log: LookupLog,
    stop: asyncio.Event,
    timeout_s: float,
) -> None:
    """Until `stop`: look up existing executions (200 expected) and unknown ones
    (404 `execution_not_found` expected), alternating over the gateways."""
    known = itertools.cycle(demo.executions.values())
    headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
    headers["X-Request-Timeout"] = str(timeout_s)
    for turn in itertools.count():
        if stop.is_set():
            return
        unknown = turn % 4 == 3
        execution_id = ids.new_execution_id() if unknown else next(known)
        url = f"{next(gateways)}/v1/retrievers/{demo.retriever.name}/executions/{execution_id}"
        started = time.monotonic()
        try:
            async with http.get(url, headers=headers) as response:
                body = await response.read()
                status = response.status
        except aiohttp.ClientError as error:
            log.failures.append(f"{url}: {error!r}")
            continue
        finally:
            log.slowest_s = max(log.slowest_s, time.monotonic() - started)
        expected = 404 if unknown else 200
        if status == expected and (not unknown or b'"execution_not_found"' in body):
            log.outcomes[str(status)] += 1
        else:
            log.failures.append(f"{url}: {status} {body[:300]!r}")


@dataclass
class WriteLog:
    """What writers were told: the last acknowledged status of each execution."""

    acknowledged: dict[str, Status] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    completed: int = 0


async def write_loop(
    writer: Stubs, metadata: Metadata, retriever: str, log: WriteLog, stop: asyncio.Event
) -> None:
    """Until `stop`: start → report one stage → complete, recording every acknowledgement.

    A failed call leaves its execution behind (its outcome is in doubt) and
    starts a new one; the error code is counted, for the test to judge.
    """
    while not stop.is_set():
        await write_one(writer, metadata, retriever, log)


async def write_one(writer: Stubs, metadata: Metadata, retriever: str, log: WriteLog) -> None:
    execution_id = ""
    try:
        started = await writer.writer.StartExecution(
            writer_pb2.StartExecutionRequest(
                retriever_id=retriever, request_id=secrets.token_hex(8), total_stages=1
            ),
            metadata=metadata,
            timeout=WRITE_TIMEOUT_S,
        )
        execution_id = started.execution.execution_id
        log.acknowledged[execution_id] = execution_pb2.EXECUTION_STATUS_PENDING
        await writer.writer.ReportStageProgress(
            writer_pb2.ReportStageProgressRequest(
                retriever_id=retriever,
                execution_id=execution_id,
                stage_name="feature_search",
                statistics=execution_pb2.StageStatistics(input_count=10, output_count=DOCUMENTS),
                stages_completed=1,
            ),
            metadata=metadata,
            timeout=WRITE_TIMEOUT_S,
        )
        log.acknowledged[execution_id] = execution_pb2.EXECUTION_STATUS_PROCESSING
        await writer.writer.CompleteExecution(
            writer_pb2.CompleteExecutionRequest(
                retriever_id=retriever,
                execution_id=execution_id,
                documents=[
                    raw_json_pb2.RawJson(json=f'{{"document_id":"d{n}"}}') for n in range(DOCUMENTS)
                ],
            ),
            metadata=metadata,
            timeout=WRITE_TIMEOUT_S,
        )
        log.acknowledged[execution_id] = execution_pb2.EXECUTION_STATUS_COMPLETED
        log.completed += 1
    except grpc.aio.AioRpcError as error:
        # A retry meeting its own committed first attempt answers OK (completion is
        # idempotent), so every error here counts, EXECUTION_TERMINAL included.
        log.errors[error.code().name] += 1
        await asyncio.sleep(0.02)  # do not spin against a store that is down


async def missing_writes(
    reader: Stubs, metadata: Metadata, retriever: str, log: WriteLog
) -> list[str]:
    """Acknowledged executions the store does not hold in (at least) the acknowledged state."""
    missing = []
    for execution_id, status in log.acknowledged.items():
        try:
            stored = await reader.reader.GetExecution(
                service_pb2.GetExecutionRequest(retriever_id=retriever, execution_id=execution_id),
                metadata=metadata,
                timeout=WRITE_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as error:
            missing.append(f"{execution_id}: {error.code().name}")
            continue
        if stored.status < status:
            missing.append(f"{execution_id}: {stored.status} < acknowledged {status}")
        elif status == execution_pb2.EXECUTION_STATUS_COMPLETED:
            count = len(json.loads(stored.documents.json))
            if count != DOCUMENTS:
                missing.append(f"{execution_id}: {count} documents")
    return missing


async def cluster_children(
    stdout: asyncio.StreamReader,
    stderr: asyncio.Task[bytes],
    count: int,
    printed: list[str] | None = None,
) -> dict[str, tuple[str, int]]:
    """Read `execgate cluster`'s output until `count` children's address lines are in it:
    each child's name ("service-1", "gateway-1") to its address and pid.

    Every line read is appended to `printed` if given; `stderr` (the whole of the
    cluster's, being read) is shown if the output ends first.
    """
    children: dict[str, tuple[str, int]] = {}
    while len(children) < count:
        line = (await asyncio.wait_for(stdout.readline(), 60)).decode()
        assert line, f"the cluster ended early: {(await stderr).decode()[-2000:]}"
        if printed is not None:
            printed.append(line)
        found = ADDRESS_LINE.match(line.strip())
        if found:
            children[f"{found[1]}-{found[2]}"] = (found[3], int(found[4]))
    return children


def demo_auth(demo: DemoData) -> Metadata:
    return auth(demo.api_key, demo.namespace.name)
