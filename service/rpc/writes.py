"""ExecutionWriterService: the internal write path (start → stage progress → complete | fail)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2

from service import ids
from service.auth import Authenticator
from service.errors import NotFoundError
from service.executions import lifecycle
from service.executions.events import change_events
from service.retrievers import RetrieverDirectory
from service.rpc.call import CallMetadata
from service.rpc.reads import invalid_execution_id
from service.rpc.wire import embedded, true_bool
from service.store.protocol import ExecutionUpdate, NotFound, Retriever, Store

Context = grpc.aio.ServicerContext[Any, Any]

# Every response carries the stored ExecutionDetail as field 1 (`execution`).
_EXECUTION_FIELD = 1
_CREATED_FIELD = writer_pb2.StartExecutionResponse.CREATED_FIELD_NUMBER


def unix_micros() -> int:
    return time.time_ns() // 1000


class ExecutionWriter:
    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        retrievers: RetrieverDirectory,
        clock: Callable[[], int] = unix_micros,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._authenticator = authenticator
        self._retrievers = retrievers
        self._clock = clock
        # Wakes this process's watchers at once (others learn through the store).
        self._on_change = on_change

    async def start_execution(
        self, request: writer_pb2.StartExecutionRequest, metadata: CallMetadata, context: Context
    ) -> bytes:
        namespace_id, retriever = await self._target(metadata, request.retriever_id)
        row = lifecycle.start(
            request,
            execution_id=ids.new_execution_id(),
            namespace_id=namespace_id,
            retriever_id=retriever.id,
            now_us=self._clock(),
        )
        stored, created = await self._store.insert_execution(row)
        response = embedded(_EXECUTION_FIELD, stored.detail)
        return response + true_bool(_CREATED_FIELD) if created else response

    async def report_stage_progress(
        self,
        request: writer_pb2.ReportStageProgressRequest,
        metadata: CallMetadata,
        context: Context,
    ) -> bytes:
        target = await self._target(metadata, request.retriever_id)
        execution_id = _execution_id(request.execution_id)
        report = lifecycle.prepare_stage_report(request)
        return await self._update(
            target, execution_id, lambda row: lifecycle.report_stage(row, report)
        )

    async def complete_execution(
        self, request: writer_pb2.CompleteExecutionRequest, metadata: CallMetadata, context: Context
    ) -> bytes:
        target = await self._target(metadata, request.retriever_id)
        execution_id = _execution_id(request.execution_id)
        completion = lifecycle.prepare_completion(request)
        now_us = self._clock()
        return await self._update(
            target, execution_id, lambda row: lifecycle.complete(row, completion, now_us)
        )

    async def fail_execution(
        self, request: writer_pb2.FailExecutionRequest, metadata: CallMetadata, context: Context
    ) -> bytes:
        target = await self._target(metadata, request.retriever_id)
        execution_id = _execution_id(request.execution_id)
        failure = lifecycle.prepare_failure(request)
        now_us = self._clock()
        return await self._update(
            target, execution_id, lambda row: lifecycle.fail(row, failure, now_us)
        )

    async def _target(
        self, metadata: CallMetadata, retriever_reference: str
    ) -> tuple[str, Retriever]:
        caller = await self._authenticator.caller(
            metadata.authorization, metadata.namespace, "write"
        )
        retriever = await self._retrievers.resolve(caller.namespace_id, retriever_reference)
        return caller.namespace_id, retriever

    async def _update(
        self, target: tuple[str, Retriever], execution_id: str, update: ExecutionUpdate
    ) -> bytes:
        namespace_id, retriever = target
        try:
            row = await self._store.update_execution(
                namespace_id, retriever.id, execution_id, update, change_events
            )
        except NotFound:
            raise NotFoundError("execution", execution_id) from None
        if self._on_change is not None:
            self._on_change(execution_id)
        return embedded(_EXECUTION_FIELD, row.detail)


def _execution_id(value: str) -> str:
    if not ids.is_execution_id(value):
        raise invalid_execution_id()
    return value
