"""ListExecutions: turn a request into a store `ListQuery`, and the opaque page cursor.

A cursor is the URL-safe base64 of the keyset position of the page's last
row plus a fingerprint of the query (namespace, retriever, filters, sorts),
so a cursor presented with a different query is rejected instead of
silently paging through something else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2

from service import ids
from service.errors import InvalidArgumentError
from service.executions.records import STATUS_NAMES
from service.store.protocol import ListQuery, ListStatus, SortColumn, SortKey
from service.store.sql import keyset_position

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
MAX_OFFSET = 10_000
MAX_SORTS = 4
_MAX_CURSOR_LENGTH = 1024

_SORT_COLUMNS: dict[int, SortColumn] = {
    service_pb2.EXECUTION_SORT_FIELD_UNSPECIFIED: "created_at",
    service_pb2.EXECUTION_SORT_FIELD_CREATED_AT: "created_at",
    service_pb2.EXECUTION_SORT_FIELD_COMPLETED_AT: "completed_at",
    service_pb2.EXECUTION_SORT_FIELD_DURATION_MS: "duration_ms",
    service_pb2.EXECUTION_SORT_FIELD_CREDITS_USED: "credits_used",
}
_DESCENDING: dict[int, bool] = {
    service_pb2.SORT_DIRECTION_UNSPECIFIED: True,
    service_pb2.SORT_DIRECTION_ASC: False,
    service_pb2.SORT_DIRECTION_DESC: True,
}
_NEWEST_FIRST = (SortKey("created_at", descending=True),)

Position = tuple[int | float | str, ...]


@dataclass(frozen=True, slots=True)
class Listing:
    query: ListQuery
    fingerprint: str


def build_listing(
    request: service_pb2.ListExecutionsRequest, *, namespace_id: str, retriever_id: str
) -> Listing:
    limit = request.limit or DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgumentError("limit", f"limit must be between 1 and {MAX_LIMIT}")
    if not 0 <= request.offset <= MAX_OFFSET:
        raise InvalidArgumentError("offset", f"offset must be between 0 and {MAX_OFFSET}")
    query = request.query
    status: ListStatus | None = None
    if query.status == execution_pb2.EXECUTION_STATUS_RUNNING:
        status = "running"
    elif query.status:
        if query.status not in STATUS_NAMES:
            raise InvalidArgumentError("query.status", f"unknown status {query.status}")
        status = STATUS_NAMES[query.status]
    filters = query.filters
    created_after_us = (
        filters.created_after.ToMicroseconds() if filters.HasField("created_after") else None
    )
    created_before_us = (
        filters.created_before.ToMicroseconds() if filters.HasField("created_before") else None
    )
    sort = _sort_keys(query.sorts)
    fingerprint = _fingerprint(
        namespace_id, retriever_id, status, created_after_us, created_before_us, sort
    )
    after = decode_cursor(request.cursor, fingerprint, sort) if request.cursor else None
    return Listing(
        query=ListQuery(
            namespace_id=namespace_id,
            retriever_id=retriever_id,
            limit=limit,
            offset=0 if after is not None else request.offset,
            status=status,
            created_after_us=created_after_us,
            created_before_us=created_before_us,
            sort=sort,
            after=after,
            include_total=request.include_total,
        ),
        fingerprint=fingerprint,
    )


def encode_cursor(listing: Listing, position: Position) -> str:
    payload = orjson.dumps({"f": listing.fingerprint, "a": list(position)})
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def _sort_keys(sorts: Iterable[service_pb2.ExecutionSort]) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    for index, sort in enumerate(sorts):
        if index >= MAX_SORTS:
            raise InvalidArgumentError("query.sorts", f"at most {MAX_SORTS} sort keys are allowed")
        column = _SORT_COLUMNS.get(sort.field)
        if column is None:
            raise InvalidArgumentError(
                f"query.sorts[{index}].field", f"unknown sort field {sort.field}"
            )
        descending = _DESCENDING.get(sort.direction)
        if descending is None:
            raise InvalidArgumentError(
                f"query.sorts[{index}].direction", f"unknown sort direction {sort.direction}"
            )
        if any(key.column == column for key in keys):
            raise InvalidArgumentError(
                f"query.sorts[{index}].field", f"{column} appears twice in the sorts"
            )
        keys.append(SortKey(column, descending))
    return tuple(keys) or _NEWEST_FIRST


def _fingerprint(
    namespace_id: str,
    retriever_id: str,
    status: ListStatus | None,
    created_after_us: int | None,
    created_before_us: int | None,
    sort: tuple[SortKey, ...],
) -> str:
    material = orjson.dumps(
        [
            namespace_id,
            retriever_id,
            status,
            created_after_us,
            created_before_us,
            [[key.column, key.descending] for key in sort],
        ]
    )
    return hashlib.blake2b(material, digest_size=8).hexdigest()


def decode_cursor(cursor: str, fingerprint: str, sort: tuple[SortKey, ...]) -> Position:
    """The keyset position in `cursor`, or InvalidArgumentError (INVALID_CURSOR): any string
    is one or the other. Every value must fit the column it resumes (a 64-bit integer for
    the times, a finite number for the others), or the database would refuse it."""

    def invalid(message: str) -> InvalidArgumentError:
        return InvalidArgumentError("cursor", message, reason="INVALID_CURSOR")

    not_ours = "cursor is not a cursor returned by this API"
    if len(cursor) > _MAX_CURSOR_LENGTH:
        raise invalid("cursor is too long")
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):  # not base64 (or not ASCII), not JSON
        raise invalid(not_ours) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), list):
        raise invalid(not_ours)
    if payload.get("f") != fingerprint:
        raise invalid("cursor belongs to a different query (status, filters, sorts or retriever)")
    values = payload["a"]
    if len(values) != len(sort) + 1:
        raise invalid(not_ours)
    *keys, execution_id = values
    if not all(_fits(key, value) for key, value in zip(sort, keys, strict=True)):
        raise invalid(not_ours)
    if not isinstance(execution_id, str) or not ids.is_execution_id(execution_id):
        raise invalid(not_ours)
    return (*keys, execution_id)


_INT64 = range(-(2**63), 2**63)
_TIME_COLUMNS = frozenset({"created_at", "completed_at"})


def _fits(key: SortKey, value: object) -> bool:
    """Whether `value` is a position the store can compare with `key`'s column."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value in _INT64
    return isinstance(value, float) and math.isfinite(value) and key.column not in _TIME_COLUMNS


__all__ = ["Listing", "build_listing", "decode_cursor", "encode_cursor", "keyset_position"]
