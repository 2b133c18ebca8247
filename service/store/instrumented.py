"""A `Store` that times every operation of another store into `ServiceMetrics`.

Wrapping keeps the SQLite and PostgreSQL stores free of metrics. Every
operation is timed, failed ones too; an exception counts as a store error
labelled with its class name, except a `ServiceError`: `update_execution`
passes those through from the service's own update function (a domain
refusal such as EXECUTION_TERMINAL, not a store failure). `open` and `close`
are passed through untimed: they belong to the process's lifetime, not to calls.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import TypeVar

from service.errors import ServiceError
from service.metrics import ServiceMetrics
from service.store.protocol import (
    ApiKey,
    ChangeEvents,
    ChangeListener,
    ChangeSubscription,
    ExecutionRow,
    ExecutionUpdate,
    ListPage,
    ListQuery,
    LoggedEvent,
    Namespace,
    Retriever,
    Store,
)

Result = TypeVar("Result")


class InstrumentedStore:
    def __init__(self, store: Store, metrics: ServiceMetrics) -> None:
        self.wrapped = store
        self._metrics = metrics

    async def _timed(self, operation: str, pending: Awaitable[Result]) -> Result:
        started = time.perf_counter()
        try:
            return await pending
        except ServiceError:
            raise
        except Exception as error:
            self._metrics.count_store_error(operation, type(error).__name__)
            raise
        finally:
            self._metrics.observe_store(operation, time.perf_counter() - started)

    async def open(self) -> None:
        await self.wrapped.open()

    async def close(self) -> None:
        await self.wrapped.close()

    async def healthy(self) -> bool:
        return await self._timed("healthy", self.wrapped.healthy())

    async def create_namespace(self, namespace: Namespace) -> None:
        await self._timed("create_namespace", self.wrapped.create_namespace(namespace))

    async def find_namespace(self, id_or_name: str) -> Namespace | None:
        return await self._timed("find_namespace", self.wrapped.find_namespace(id_or_name))

    async def list_namespaces(self) -> Sequence[Namespace]:
        return await self._timed("list_namespaces", self.wrapped.list_namespaces())

    async def create_retriever(self, retriever: Retriever) -> None:
        await self._timed("create_retriever", self.wrapped.create_retriever(retriever))

    async def find_retriever(self, namespace_id: str, id_or_name: str) -> Retriever | None:
        return await self._timed(
            "find_retriever", self.wrapped.find_retriever(namespace_id, id_or_name)
        )

    async def create_api_key(self, key: ApiKey) -> None:
        await self._timed("create_api_key", self.wrapped.create_api_key(key))

    async def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        return await self._timed("find_api_key", self.wrapped.find_api_key(key_hash))

    async def insert_execution(self, row: ExecutionRow) -> tuple[ExecutionRow, bool]:
        return await self._timed("insert_execution", self.wrapped.insert_execution(row))

    async def get_execution(
        self, namespace_id: str, retriever_id: str, execution_id: str
    ) -> ExecutionRow | None:
        # `_timed` inlined: the hottest operation, one coroutine level fewer.
        started = time.perf_counter()
        try:
            return await self.wrapped.get_execution(namespace_id, retriever_id, execution_id)
        except ServiceError:
            raise
        except Exception as error:
            self._metrics.count_store_error("get_execution", type(error).__name__)
            raise
        finally:
            self._metrics.observe_store("get_execution", time.perf_counter() - started)

    async def update_execution(
        self,
        namespace_id: str,
        retriever_id: str,
        execution_id: str,
        update: ExecutionUpdate,
        events: ChangeEvents | None = None,
    ) -> ExecutionRow:
        return await self._timed(
            "update_execution",
            self.wrapped.update_execution(namespace_id, retriever_id, execution_id, update, events),
        )

    async def read_events(
        self, execution_id: str, after_seq: int, limit: int
    ) -> Sequence[LoggedEvent]:
        return await self._timed(
            "read_events", self.wrapped.read_events(execution_id, after_seq, limit)
        )

    async def event_positions(self, execution_ids: Sequence[str]) -> Mapping[str, int]:
        return await self._timed("event_positions", self.wrapped.event_positions(execution_ids))

    async def subscribe_changes(
        self, listener: ChangeListener, *, poll_seconds: float
    ) -> ChangeSubscription:
        # The process's lifetime, like open/close: not timed.
        return await self.wrapped.subscribe_changes(listener, poll_seconds=poll_seconds)

    async def list_executions(self, query: ListQuery) -> ListPage:
        return await self._timed("list_executions", self.wrapped.list_executions(query))
