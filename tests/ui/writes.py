"""Drive executions through the real write path (ExecutionWriterService over gRPC)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from execgate.type.v1 import raw_json_pb2

from tests.running_service import Metadata, RunningService, Stubs, auth, stubs


def raw(value: Any) -> raw_json_pb2.RawJson:
    return raw_json_pb2.RawJson(json=orjson.dumps(value).decode())


@dataclass(frozen=True)
class Writer:
    calls: Stubs
    metadata: Metadata
    retriever: str

    async def start(self, total_stages: int) -> str:
        started = await self.calls.writer.StartExecution(
            writer_pb2.StartExecutionRequest(
                retriever_id=self.retriever, total_stages=total_stages
            ),
            metadata=self.metadata,
        )
        return started.execution.execution_id

    async def report(
        self,
        execution_id: str,
        stage: str,
        counts: tuple[int, int],
        duration_ms: float,
        *,
        done: int,
        running: str | None = None,
        metadata: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        statistics = execution_pb2.StageStatistics(
            input_count=counts[0],
            output_count=counts[1],
            duration_ms=duration_ms,
            metadata=raw(metadata or {}),
        )
        if error is not None:
            statistics.error = error
        request = writer_pb2.ReportStageProgressRequest(
            retriever_id=self.retriever,
            execution_id=execution_id,
            stage_name=stage,
            statistics=statistics,
            stages_completed=done,
        )
        if running is not None:
            request.current_stage = running
        await self.calls.writer.ReportStageProgress(request, metadata=self.metadata)

    async def complete(
        self,
        execution_id: str,
        documents: Sequence[Any],
        *,
        budget: dict[str, Any] | None = None,
        warnings: Sequence[str] = (),
        total_time_ms: float = 0.0,
        credits_used: float = 0.0,
    ) -> None:
        await self.calls.writer.CompleteExecution(
            writer_pb2.CompleteExecutionRequest(
                retriever_id=self.retriever,
                execution_id=execution_id,
                documents=[raw(document) for document in documents],
                budget=raw(budget or {}),
                warnings=list(warnings),
                total_time_ms=total_time_ms,
                credits_used=credits_used,
            ),
            metadata=self.metadata,
        )

    async def fail(self, execution_id: str, error: str) -> None:
        await self.calls.writer.FailExecution(
            writer_pb2.FailExecutionRequest(
                retriever_id=self.retriever, execution_id=execution_id, error=error
            ),
            metadata=self.metadata,
        )


@asynccontextmanager
async def writer_for(service: RunningService) -> AsyncIterator[Writer]:
    demo = service.demo
    async with grpc.aio.insecure_channel(service.address) as channel:
        yield Writer(stubs(channel), auth(demo.api_key, demo.namespace.name), demo.retriever.id)
