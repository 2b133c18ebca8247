"""WatchExecution from a client's side: read a stream, and drive an execution for it to see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from execgate.retrievers.v1 import execution_events_pb2 as events_pb2
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from execgate.type.v1 import raw_json_pb2

from tests.support.running_service import Metadata, Stubs

Event = events_pb2.ExecutionEvent
Status = execution_pb2.ExecutionStatus

# What a watcher of a fresh execution sees while `drive` runs, after the snapshot.
DRIVEN_KINDS = [
    ("stage_started", "search"),
    ("stage_progress", "search"),
    ("stage_completed", "search"),
    ("stage_started", "rerank"),
    ("budget_changed", ""),
    ("stage_progress", "rerank"),
    ("stage_completed", "rerank"),
    ("budget_changed", ""),
    ("completed", ""),
]
STEPS = 5  # writes `drive` makes


def kind(event: Event) -> tuple[str, str]:
    name = event.WhichOneof("event")
    assert name is not None
    return name, getattr(getattr(event, name), "stage_name", "")


def watch(
    stubs: Stubs, metadata: Metadata, retriever: str, execution_id: str, last_event_id: str = ""
) -> grpc.aio.UnaryStreamCall[service_pb2.WatchExecutionRequest, Event]:
    return stubs.reader.WatchExecution(
        service_pb2.WatchExecutionRequest(
            retriever_id=retriever, execution_id=execution_id, last_event_id=last_event_id
        ),
        metadata=metadata,
    )


async def events_until(
    stream: AsyncIterable[Event], count: int, within: float = 10.0
) -> list[Event]:
    """The next `count` events (fails on timeout or on an early end)."""
    received: list[Event] = []
    async with asyncio.timeout(within):
        async for event in stream:
            received.append(event)
            if len(received) == count:
                break
    assert len(received) == count, f"the stream ended after {received}"
    return received


async def read_to_the_end(
    stream: AsyncIterable[Event],
) -> tuple[list[Event], grpc.aio.AioRpcError | None]:
    """Every event until the stream ends, and the error it ended with (None: OK)."""
    received: list[Event] = []
    try:
        async for event in stream:
            received.append(event)
    except grpc.aio.AioRpcError as error:
        return received, error
    return received, None


def _budget(used: float) -> raw_json_pb2.RawJson:
    return raw_json_pb2.RawJson(json=orjson.dumps({"credits_used": used}).decode())


def _statistics(inputs: int, outputs: int) -> execution_pb2.StageStatistics:
    return execution_pb2.StageStatistics(input_count=inputs, output_count=outputs, duration_ms=2.5)


@dataclass
class Driver:
    """The write RPCs that take a fresh two-stage execution to completed, one per `step`."""

    stubs: Stubs
    metadata: Metadata
    retriever: str
    execution_id: str = ""
    taken: int = 0

    async def start(self) -> str:
        response = await self.stubs.writer.StartExecution(
            writer_pb2.StartExecutionRequest(retriever_id=self.retriever, total_stages=2),
            metadata=self.metadata,
        )
        self.execution_id = response.execution.execution_id
        return self.execution_id

    async def step(self) -> None:
        reports: list[dict[str, Any]] = [
            {"stage_name": "search", "statistics": _statistics(100, 40), "current_stage": "search"},
            {
                "stage_name": "search",
                "statistics": _statistics(100, 20),
                "current_stage": "rerank",
                "stages_completed": 1,
                "budget": _budget(0.5),
            },
            {
                "stage_name": "rerank",
                "statistics": _statistics(20, 8),
                "current_stage": "rerank",
                "stages_completed": 1,
            },
            {
                "stage_name": "rerank",
                "statistics": _statistics(20, 5),
                "stages_completed": 2,
                "budget": _budget(1.0),
            },
        ]
        if self.taken < len(reports):
            await self.stubs.writer.ReportStageProgress(
                writer_pb2.ReportStageProgressRequest(
                    retriever_id=self.retriever,
                    execution_id=self.execution_id,
                    **reports[self.taken],
                ),
                metadata=self.metadata,
            )
        else:
            await self.stubs.writer.CompleteExecution(
                writer_pb2.CompleteExecutionRequest(
                    retriever_id=self.retriever,
                    execution_id=self.execution_id,
                    documents=[raw_json_pb2.RawJson(json='{"document_id":"d1"}')],
                    budget=_budget(1.0),
                    total_time_ms=12.0,
                    credits_used=1.0,
                ),
                metadata=self.metadata,
            )
        self.taken += 1

    async def run(self, interval: float = 0.0) -> None:
        while self.taken < STEPS:
            await asyncio.sleep(interval)
            await self.step()
