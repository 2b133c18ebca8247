"""ExecutionService: GetExecution and ListExecutions, answered from stored bytes."""

from __future__ import annotations

import time
from typing import Any

import grpc
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2

from service import ids
from service.auth import Authenticator
from service.errors import InvalidArgumentError, NotFoundError
from service.executions.listing import build_listing, encode_cursor
from service.executions.records import TERMINAL, legacy_etag
from service.retrievers import RetrieverDirectory
from service.rpc.call import CallMetadata
from service.rpc.wire import double_field, embedded
from service.store.protocol import ExecutionRow, Store
from service.store.sql import keyset_position

Context = grpc.aio.ServicerContext[Any, Any]

# Field numbers of ListExecutionsResponse, for splicing stored summaries.
_RESULTS_FIELD = service_pb2.ListExecutionsResponse.RESULTS_FIELD_NUMBER
_PAGINATION_FIELD = service_pb2.ListExecutionsResponse.PAGINATION_FIELD_NUMBER
# Appended to a stored summary (the last value of a field wins when parsed).
_SUMMARY_DURATION = execution_pb2.ExecutionSummary.DURATION_MS_FIELD_NUMBER


def listed_summary(row: ExecutionRow, now_us: int) -> bytes:
    """The stored summary, with the time so far as `duration_ms` while in flight."""
    if row.status in TERMINAL:
        return row.summary
    elapsed_ms = max(0, now_us - row.created_at_us) / 1000
    return row.summary + double_field(_SUMMARY_DURATION, elapsed_ms)


def lower_bound_total(offset: int, returned: int, has_next: bool) -> int:
    """`pagination.total` without `include_total`: what this page proves exists."""
    return offset + returned + (1 if has_next else 0)


class ExecutionReader:
    def __init__(
        self, store: Store, authenticator: Authenticator, retrievers: RetrieverDirectory
    ) -> None:
        self._store = store
        self._authenticator = authenticator
        self._retrievers = retrievers

    async def get_execution(
        self, request: service_pb2.GetExecutionRequest, metadata: CallMetadata, context: Context
    ) -> bytes | execution_pb2.ExecutionDetail:
        caller = await self._authenticator.caller(
            metadata.authorization, metadata.namespace, "read"
        )
        execution_id = request.execution_id
        if not ids.is_execution_id(execution_id):
            raise invalid_execution_id()
        retriever = self._retrievers.cached(
            caller.namespace_id, request.retriever_id
        ) or await self._retrievers.resolve(caller.namespace_id, request.retriever_id)
        row = await self._store.get_execution(caller.namespace_id, retriever.id, execution_id)
        if row is None:
            raise NotFoundError("execution", execution_id)
        # Completed and failed executions never change again.
        cache_control = "private" if row.status in TERMINAL else "no-store"
        if not request.include_legacy_results:
            context.set_trailing_metadata((("etag", row.etag), ("cache-control", cache_control)))
            return row.detail
        # Deprecated slow path: the only read that parses the stored detail.
        detail = execution_pb2.ExecutionDetail.FromString(row.detail)
        detail.results.json = detail.documents.json or "[]"  # set even when empty: `[]`
        context.set_trailing_metadata(
            (("etag", legacy_etag(row.etag)), ("cache-control", cache_control))
        )
        return detail

    async def list_executions(
        self, request: service_pb2.ListExecutionsRequest, metadata: CallMetadata, context: Context
    ) -> bytes:
        caller = await self._authenticator.caller(
            metadata.authorization, metadata.namespace, "read"
        )
        retriever = await self._retrievers.resolve(caller.namespace_id, request.retriever_id)
        listing = build_listing(
            request, namespace_id=caller.namespace_id, retriever_id=retriever.id
        )
        page = await self._store.list_executions(listing.query)
        query = listing.query
        pagination = service_pb2.ListPagination(
            limit=query.limit,
            offset=query.offset,
            has_next=page.has_next,
            total=(
                page.total
                if page.total is not None
                else lower_bound_total(query.offset, len(page.rows), page.has_next)
            ),
        )
        if page.has_next and page.rows:
            position = keyset_position(page.rows[-1], query.sort)
            pagination.next_cursor = encode_cursor(listing, position)
        context.set_trailing_metadata((("cache-control", "no-store"),))
        now_us = time.time_ns() // 1000
        return b"".join(
            embedded(_RESULTS_FIELD, listed_summary(row, now_us)) for row in page.rows
        ) + embedded(_PAGINATION_FIELD, pagination.SerializeToString())


def invalid_execution_id() -> InvalidArgumentError:
    return InvalidArgumentError(
        "execution_id",
        "execution_id must be 'exec_' followed by 1 to 64 letters or digits",
        reason="INVALID_EXECUTION_ID",
    )
