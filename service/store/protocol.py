"""The store interface: what the service needs from a database, and nothing more.

The store is deliberately ignorant of protobuf and of the execution state
machine. An execution is kept as two opaque, pre-serialised blobs (the
`ExecutionDetail` a read returns as-is, and the `ExecutionSummary` a listing
splices), plus the few columns that lookups, filters and sorts need. Each
execution also has an event log of opaque payloads (for WatchExecution),
appended in the transaction of the change that makes them. All domain rules
live in the service; the store only makes each change atomic.

Every implementation (SQLite, PostgreSQL) must pass `tests/store_contract/`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from runtime.token_bucket import Limit

ExecutionStatusName = Literal["pending", "processing", "completed", "failed"]
# A listing's status filter: one status, or "running" for any execution in flight.
ListStatus = ExecutionStatusName | Literal["running"]
SortColumn = Literal["created_at", "completed_at", "duration_ms", "credits_used"]
Permission = Literal["read", "write"]


class StoreError(Exception):
    """Base of the errors a store raises on purpose."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or did not answer in time; retrying may help."""


class AlreadyExists(StoreError):
    """A unique name (namespace name, retriever name within a namespace) is taken."""


class NotFound(StoreError):
    """`update_execution` was given an execution that does not exist in that scope."""


@dataclass(frozen=True, slots=True)
class Namespace:
    id: str  # ns_…
    name: str
    created_at_us: int


@dataclass(frozen=True, slots=True)
class Retriever:
    id: str  # ret_…
    namespace_id: str
    name: str
    created_at_us: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str  # key_… (public identifier; the secret itself is never stored)
    key_hash: bytes  # SHA-256 of the secret
    namespace_ids: tuple[str, ...]
    permissions: frozenset[Permission]
    created_at_us: int
    # This key's own rate limit; None: the service's default (`--rate-limit`).
    rate_limit: Limit | None = None


def rate_columns(limit: Limit | None) -> tuple[int | None, float | None]:
    """A key's rate limit as its two store columns (both NULL: the default)."""
    return (None, None) if limit is None else (limit.burst, limit.rate)


def rate_limit_from(burst: int | None, rate: float | None) -> Limit | None:
    return None if burst is None or rate is None else Limit(burst, rate)


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    """One execution as stored."""

    execution_id: str  # exec_…
    namespace_id: str
    retriever_id: str  # always the ret_… ID
    request_id: str | None  # writer's idempotency key, unique per retriever
    status: ExecutionStatusName
    created_at_us: int  # Unix microseconds
    completed_at_us: int | None
    duration_ms: float | None
    credits_used: float
    detail: bytes  # serialized ExecutionDetail, returned by GetExecution without parsing
    summary: bytes  # serialized ExecutionSummary, spliced into ListExecutions
    etag: str  # strong validator of `detail`; changes with every write
    # Position of the execution's event log: the sequence number of its last
    # event (0 before any). Set by the store, whatever `update` returns.
    event_seq: int = 0


@dataclass(frozen=True, slots=True)
class SortKey:
    column: SortColumn
    descending: bool = True


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A page of one retriever's executions.

    Rows are ordered by `sort` and then by `execution_id` (same direction as
    the last sort key) so that the order is total. `after` is the sort values
    of the last row of the previous page followed by its execution_id (keyset
    paging); when it is set, `offset` is ignored. A missing `duration_ms`
    sorts as -1; a missing `completed_at` (an execution in flight) sorts after
    every completed one in either direction (as -1 descending, as 2**63 - 1
    ascending: those are the values `after` carries for it). `status`
    "running" matches pending and processing executions.
    """

    namespace_id: str
    retriever_id: str
    limit: int
    offset: int = 0
    status: ListStatus | None = None
    created_after_us: int | None = None  # inclusive
    created_before_us: int | None = None  # exclusive
    sort: tuple[SortKey, ...] = (SortKey("created_at", True),)
    after: tuple[int | float | str, ...] | None = None
    include_total: bool = False


@dataclass(frozen=True, slots=True)
class ListPage:
    rows: Sequence[ExecutionRow]  # at most `limit`
    has_next: bool
    total: int | None  # only when `include_total`


# Called inside the store's write transaction with the current row; returns
# the row to store. It must be pure and fast: it may be called again if the
# store retries the transaction. Raising aborts the transaction unchanged.
ExecutionUpdate = Callable[[ExecutionRow], ExecutionRow]

# Called inside the same transaction, after `update`, with the row before and
# the row after it; returns the events the change makes (opaque bytes, in
# order), appended to the execution's event log atomically with the change.
# Same rules as `ExecutionUpdate`: pure, fast, may be called again.
ChangeEvents = Callable[[ExecutionRow, ExecutionRow], Sequence[bytes]]

# The event log keeps this many newest events per execution; older ones are
# dropped in the transaction that appends past the limit, so a writer that
# reports progress without end cannot grow the log without bound.
EVENTS_KEPT = 1000


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    seq: int  # 1, 2, ... per execution
    payload: bytes


# Told `execution_id` after a change to that execution committed (in any
# process or replica), or None when changes may have gone unseen (a
# reconnect) or the store can only tell that something changed.
ChangeListener = Callable[[str | None], None]


class ChangeSubscription(Protocol):
    async def close(self) -> None: ...


class Store(Protocol):
    async def open(self) -> None:
        """Connect and apply pending schema migrations (exactly once across replicas)."""

    async def close(self) -> None: ...

    async def healthy(self) -> bool:
        """True when a trivial query succeeds now."""

    # Namespaces, retrievers, keys (admin path; not hot).
    async def create_namespace(self, namespace: Namespace) -> None:
        """Raises AlreadyExists when the name is taken."""

    async def find_namespace(self, id_or_name: str) -> Namespace | None: ...

    async def list_namespaces(self) -> Sequence[Namespace]: ...

    async def create_retriever(self, retriever: Retriever) -> None:
        """Raises AlreadyExists when the name is taken in that namespace."""

    async def find_retriever(self, namespace_id: str, id_or_name: str) -> Retriever | None: ...

    async def create_api_key(self, key: ApiKey) -> None: ...

    async def find_api_key(self, key_hash: bytes) -> ApiKey | None: ...

    # Executions.
    async def insert_execution(self, row: ExecutionRow) -> tuple[ExecutionRow, bool]:
        """Store a new execution durably before returning.

        When `row.request_id` is set and that retriever already has an
        execution with it, stores nothing and returns (existing, False);
        otherwise returns (row, True).
        """

    async def get_execution(
        self, namespace_id: str, retriever_id: str, execution_id: str
    ) -> ExecutionRow | None:
        """The hot read: one indexed lookup. `retriever_id` is the ret_… ID."""

    async def update_execution(
        self,
        namespace_id: str,
        retriever_id: str,
        execution_id: str,
        update: ExecutionUpdate,
        events: ChangeEvents | None = None,
    ) -> ExecutionRow:
        """Read-modify-write in one serialisable transaction, durable on return.

        The events `events` makes of the change are appended to the
        execution's log in that transaction, numbered from the stored
        `event_seq` + 1; the returned row's `event_seq` is the last one.
        Raises NotFound when the execution does not exist in that scope, and
        whatever `update` raises (with nothing changed).
        """

    async def read_events(
        self, execution_id: str, after_seq: int, limit: int
    ) -> Sequence[LoggedEvent]:
        """Up to `limit` logged events of the execution with seq > `after_seq`, in order.

        Events older than the newest `EVENTS_KEPT` may be gone: a caller that
        needs seq `after_seq + 1` and gets a later one first has lost events.
        """

    async def event_positions(self, execution_ids: Sequence[str]) -> Mapping[str, int]:
        """The `event_seq` of each execution that exists (at most 500 IDs per call)."""

    async def subscribe_changes(
        self, listener: ChangeListener, *, poll_seconds: float
    ) -> ChangeSubscription:
        """Call `listener` on the event loop after changes committed by anyone.

        PostgreSQL pushes them (LISTEN/NOTIFY); SQLite checks every
        `poll_seconds` whether another connection committed anything.
        """

    async def list_executions(self, query: ListQuery) -> ListPage: ...
