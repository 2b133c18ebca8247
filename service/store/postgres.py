"""The PostgreSQL store: the `Store` protocol on asyncpg, for several replicas.

- One bounded pool per process (min/max size); every acquisition, connection
  and statement is bounded in time, so a dead or frozen server turns into
  `StoreUnavailable` within seconds, never a hang.
- Schema migrations run in `open()` under a PostgreSQL advisory lock, so
  replicas that start together migrate exactly once (`schema_migrations`).
- Reads are one indexed statement each; asyncpg prepares every statement once
  per connection and caches it, so a lookup is one round trip.
- Values always travel as parameters; the only SQL built at run time is the
  listing, whose pieces come from `service.store.sql`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Final

import asyncpg
import asyncpg.exceptions as pg_errors

from service.store.postgres_changes import CHANGES_CHANNEL, NotifyListener
from service.store.postgres_migrations import (
    CREATE_MIGRATIONS_TABLE,
    MIGRATIONS,
    RECORD_MIGRATION,
)
from service.store.protocol import (
    AlreadyExists,
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
    NotFound,
    Permission,
    Retriever,
    StoreError,
    StoreUnavailable,
    rate_columns,
    rate_limit_from,
)
from service.store.rows import (
    events_expired_before,
    execution_values,
    list_page,
    updated_execution,
)
from service.store.sql import EXECUTION_COLUMNS, build_list_statements, check_positions_request

# pg_advisory_lock key that serialises migrations (any fixed bigint; locks are
# per database). The digits spell "execgate" on a phone keypad.
MIGRATION_LOCK_KEY: Final = 39_324_283

# Errors after which the same call may succeed later: the server is down,
# restarting, failing over, overloaded, or the connection or pool is gone.
_TRANSIENT_ERRORS: Final = (
    OSError,  # refused, reset, unreachable, DNS failure, TLS failure
    TimeoutError,  # connect, acquire or statement timeout
    pg_errors.PostgresConnectionError,  # class 08, incl. ConnectionDoesNotExistError
    pg_errors.OperatorInterventionError,  # class 57: shutdown, crash, cannot connect now
    pg_errors.InsufficientResourcesError,  # class 53: too many connections, disk full
    pg_errors.TransactionRollbackError,  # class 40: serialization failure, deadlock
    pg_errors.ReadOnlySQLTransactionError,  # a write reached a standby mid-failover
    pg_errors.TargetServerAttributeNotMatched,  # connected to a standby mid-failover
)

_SELECT_EXECUTION = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions "  # noqa: S608 (a constant column list)
    "WHERE execution_id = $1 AND namespace_id = $2 AND retriever_id = $3"
)
_INSERT_EXECUTION = (
    f"INSERT INTO executions ({EXECUTION_COLUMNS}) "  # noqa: S608 (a constant column list)
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
    "ON CONFLICT ON CONSTRAINT executions_request_id DO NOTHING "
    "RETURNING true"
)
_SELECT_EXECUTION_BY_REQUEST = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions "  # noqa: S608 (a constant column list)
    "WHERE retriever_id = $1 AND request_id = $2"
)
# Every column but the identity ($1..$3, checked unchanged before this runs).
_UPDATE_EXECUTION = """
UPDATE executions
SET request_id = $4, status = $5, created_at_us = $6, completed_at_us = $7, duration_ms = $8,
    credits_used = $9, detail = $10, summary = $11, etag = $12, event_seq = $13
WHERE execution_id = $1 AND namespace_id = $2 AND retriever_id = $3
"""
_INSERT_EVENT = "INSERT INTO execution_events (execution_id, seq, payload) VALUES ($1, $2, $3)"
# Drops what fell out of the kept window and tells every listener (delivered
# at commit, so a watcher woken by it sees the change).
_AFTER_EVENTS = f"""
WITH dropped AS (DELETE FROM execution_events WHERE execution_id = $1 AND seq < $2)
SELECT pg_notify('{CHANGES_CHANNEL}', $1)
"""  # noqa: S608 (a constant channel name)
_READ_EVENTS = """
SELECT seq, payload FROM execution_events WHERE execution_id = $1 AND seq > $2
ORDER BY seq LIMIT $3
"""
_EVENT_POSITIONS = "SELECT execution_id, event_seq FROM executions WHERE execution_id = ANY($1)"
# The ID wins when a name happens to equal another row's ID; UNION ALL with
# LIMIT 1 stops after the first branch that finds a row.
_FIND_NAMESPACE = """
(SELECT id, name, created_at_us FROM namespaces WHERE id = $1)
UNION ALL
(SELECT id, name, created_at_us FROM namespaces WHERE name = $1)
LIMIT 1
"""
_FIND_RETRIEVER = """
(SELECT id, namespace_id, name, created_at_us FROM retrievers
 WHERE namespace_id = $1 AND id = $2)
UNION ALL
(SELECT id, namespace_id, name, created_at_us FROM retrievers
 WHERE namespace_id = $1 AND name = $2)
LIMIT 1
"""
_FIND_API_KEY = """
SELECT k.id, k.key_hash, k.permissions, k.created_at_us, k.rate_burst, k.rate_per_second,
       ARRAY(SELECT n.namespace_id FROM api_key_namespaces n
             WHERE n.key_id = k.id ORDER BY n.namespace_id) AS namespace_ids
FROM api_keys k WHERE k.key_hash = $1
"""


class PostgresStore:
    """`Store` backed by a PostgreSQL server (or a wire-compatible database).

    `url` is a libpq-style URL (`postgresql://user:password@host:port/db`);
    query parameters asyncpg does not know are sent as server settings.
    Timeouts are in seconds. `statement_cache_size=0` is needed behind a
    transaction-pooling proxy (PgBouncer), which cannot keep prepared
    statements.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        acquire_timeout: float = 5.0,
        command_timeout: float = 5.0,
        migration_lock_timeout: float = 60.0,
        statement_cache_size: int = 100,
    ) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(
                f"need 0 <= min_size <= max_size and max_size >= 1, got {min_size}, {max_size}"
            )
        self._url = url
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._acquire_timeout = acquire_timeout
        self._command_timeout = command_timeout
        self._migration_lock_timeout = migration_lock_timeout
        self._statement_cache_size = statement_cache_size
        self._pool: asyncpg.Pool | None = None

    # Lifecycle.

    async def open(self) -> None:
        if self._pool is not None:
            raise RuntimeError("store already open")
        with _translate_errors():
            await self._migrate()
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                statement_cache_size=self._statement_cache_size,
                reset=_keep_session,
            )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), self._command_timeout)
        except _TRANSIENT_ERRORS:
            pool.terminate()

    async def healthy(self) -> bool:
        try:
            async with self._connection() as conn:
                return bool(await conn.fetchval("SELECT true"))
        except StoreUnavailable:
            return False

    async def schema_version(self) -> int:
        """The highest migration applied to the database (0 before any)."""
        async with self._connection() as conn:
            version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        return int(version or 0)

    async def _migrate(self) -> None:
        # A dedicated connection: the session-level advisory lock must be
        # held on one connection from check to last migration.
        conn = await asyncpg.connect(
            self._url, timeout=self._connect_timeout, command_timeout=self._command_timeout
        )
        try:
            await conn.execute(
                "SELECT pg_advisory_lock($1)",
                MIGRATION_LOCK_KEY,
                timeout=self._migration_lock_timeout,
            )
            await conn.execute(CREATE_MIGRATIONS_TABLE)
            applied = {
                r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")
            }
            if applied and max(applied) > MIGRATIONS[-1].version:
                # A newer build migrated this database; its schema may break our statements.
                raise StoreUnavailable(
                    f"database schema version {max(applied)} is newer than this build's "
                    f"{MIGRATIONS[-1].version}"
                )
            for migration in MIGRATIONS:
                if migration.version in applied:
                    continue
                async with conn.transaction():
                    for statement in migration.statements:
                        await conn.execute(statement)
                    await conn.execute(RECORD_MIGRATION, migration.version, migration.description)
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        finally:
            # Closing the session also releases the lock if we failed midway.
            await _close_quietly(conn)

    def _connection(self) -> _PooledConnection:
        """A pooled connection for one call, with the driver's errors translated."""
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        return _PooledConnection(self._pool, self._acquire_timeout)

    # Namespaces, retrievers, keys.

    async def create_namespace(self, namespace: Namespace) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO namespaces (id, name, created_at_us) VALUES ($1, $2, $3)",
                namespace.id,
                namespace.name,
                namespace.created_at_us,
            )

    async def find_namespace(self, id_or_name: str) -> Namespace | None:
        async with self._connection() as conn:
            record = await conn.fetchrow(_FIND_NAMESPACE, id_or_name)
        return None if record is None else Namespace(*record)

    async def list_namespaces(self) -> Sequence[Namespace]:
        async with self._connection() as conn:
            records = await conn.fetch(
                "SELECT id, name, created_at_us FROM namespaces ORDER BY name"
            )
        return [Namespace(*record) for record in records]

    async def create_retriever(self, retriever: Retriever) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO retrievers (id, namespace_id, name, created_at_us)"
                " VALUES ($1, $2, $3, $4)",
                retriever.id,
                retriever.namespace_id,
                retriever.name,
                retriever.created_at_us,
            )

    async def find_retriever(self, namespace_id: str, id_or_name: str) -> Retriever | None:
        async with self._connection() as conn:
            record = await conn.fetchrow(_FIND_RETRIEVER, namespace_id, id_or_name)
        return None if record is None else Retriever(*record)

    async def create_api_key(self, key: ApiKey) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO api_keys"
                " (id, key_hash, permissions, created_at_us, rate_burst, rate_per_second)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                key.id,
                key.key_hash,
                sorted(key.permissions),
                key.created_at_us,
                *rate_columns(key.rate_limit),
            )
            await conn.executemany(
                "INSERT INTO api_key_namespaces (key_id, namespace_id) VALUES ($1, $2)",
                [(key.id, namespace_id) for namespace_id in key.namespace_ids],
            )

    async def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        async with self._connection() as conn:
            record = await conn.fetchrow(_FIND_API_KEY, key_hash)
        if record is None:
            return None
        permissions: frozenset[Permission] = frozenset(record["permissions"])
        return ApiKey(
            id=record["id"],
            key_hash=record["key_hash"],
            namespace_ids=tuple(record["namespace_ids"]),
            permissions=permissions,
            created_at_us=record["created_at_us"],
            rate_limit=rate_limit_from(record["rate_burst"], record["rate_per_second"]),
        )

    # Executions.

    async def insert_execution(self, row: ExecutionRow) -> tuple[ExecutionRow, bool]:
        async with self._connection() as conn:
            # Autocommit: the INSERT is durable (synchronous_commit) when it returns.
            inserted = await conn.fetchval(_INSERT_EXECUTION, *execution_values(row))
            if inserted:
                return row, True
            # ON CONFLICT waited for the other writer to commit; this new
            # statement's snapshot sees its row.
            record = await conn.fetchrow(
                _SELECT_EXECUTION_BY_REQUEST, row.retriever_id, row.request_id
            )
        if record is None:
            raise RuntimeError("ON CONFLICT found a request_id that no longer exists")
        return ExecutionRow(*record), False

    async def get_execution(
        self, namespace_id: str, retriever_id: str, execution_id: str
    ) -> ExecutionRow | None:
        async with self._connection() as conn:
            record = await conn.fetchrow(
                _SELECT_EXECUTION, execution_id, namespace_id, retriever_id
            )
        return None if record is None else ExecutionRow(*record)

    async def update_execution(
        self,
        namespace_id: str,
        retriever_id: str,
        execution_id: str,
        update: ExecutionUpdate,
        events: ChangeEvents | None = None,
    ) -> ExecutionRow:
        try:
            async with self._connection() as conn, conn.transaction():
                # FOR UPDATE makes concurrent writers of one execution take
                # turns, so each `update` sees the row the previous one committed.
                record = await conn.fetchrow(
                    _SELECT_EXECUTION + " FOR UPDATE", execution_id, namespace_id, retriever_id
                )
                if record is None:
                    raise NotFound(execution_id)
                try:
                    new, logged = updated_execution(ExecutionRow(*record), update, events)
                except Exception as exc:
                    raise _UpdateRejectedError(exc) from exc
                await conn.execute(_UPDATE_EXECUTION, *execution_values(new))
                if logged:
                    await conn.executemany(_INSERT_EVENT, logged)
                    await conn.execute(
                        _AFTER_EVENTS, execution_id, events_expired_before(new.event_seq)
                    )
        except _UpdateRejectedError as rejected:
            # The transaction rolled back; the caller sees its own exception.
            raise rejected.cause from None
        return new

    async def read_events(
        self, execution_id: str, after_seq: int, limit: int
    ) -> Sequence[LoggedEvent]:
        async with self._connection() as conn:
            records = await conn.fetch(_READ_EVENTS, execution_id, after_seq, limit)
        return [LoggedEvent(seq, payload) for seq, payload in records]

    async def event_positions(self, execution_ids: Sequence[str]) -> Mapping[str, int]:
        check_positions_request(execution_ids)
        if not execution_ids:
            return {}
        async with self._connection() as conn:
            records = await conn.fetch(_EVENT_POSITIONS, list(execution_ids))
        return {execution_id: event_seq for execution_id, event_seq in records}

    async def subscribe_changes(
        self, listener: ChangeListener, *, poll_seconds: float
    ) -> ChangeSubscription:
        # Pushed by NOTIFY; `poll_seconds` paces reconnects of the listening connection.
        with _translate_errors():
            return await NotifyListener.start(
                self._url, listener, connect_timeout=self._connect_timeout, retry=poll_seconds
            )

    async def list_executions(self, query: ListQuery) -> ListPage:
        statements = build_list_statements(query, "dollar")
        async with self._connection() as conn:
            if statements.count is None:
                records = await conn.fetch(statements.page.sql, *statements.page.params)
                total = None
            else:
                # One snapshot for the page and its total, so they agree.
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    records = await conn.fetch(statements.page.sql, *statements.page.params)
                    total = await conn.fetchval(statements.count.sql, *statements.count.params)
        return list_page(records, query.limit, total)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook that sends nothing.

    asyncpg's default reset (`RESET ALL`, `UNLISTEN *`, ...) costs a round
    trip on every release; this store never changes session state, and the
    pool still rolls back any open transaction before reuse.
    """


async def _close_quietly(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=1.0)
    except _TRANSIENT_ERRORS:
        conn.terminate()


def _translated(exc: Exception) -> Exception | None:
    """The store's exception for a driver exception; None to let it through."""
    if isinstance(exc, pg_errors.UniqueViolationError):
        return AlreadyExists(exc.constraint_name or "unique constraint")
    if isinstance(exc, pg_errors.IntegrityConstraintViolationError):
        # A foreign key, NOT NULL or CHECK: the caller broke the protocol.
        return StoreError(f"PostgreSQL rejected the row ({exc.constraint_name})")
    if _is_transient(exc):
        # The class name only: driver messages may carry host names or SQL.
        return StoreUnavailable(f"PostgreSQL is unavailable ({type(exc).__name__})")
    return None


@contextmanager
def _translate_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        store_error = _translated(exc)
        if store_error is None:
            raise
        raise store_error from exc


class _PooledConnection:
    """`async with`: a connection from the pool within the acquire timeout,
    released after; driver errors on the way in, inside or out are translated.

    A class rather than an `@asynccontextmanager`: this wraps every call, and
    a generator-based context manager costs several microseconds more.
    """

    __slots__ = ("_acquiring",)

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._acquiring = pool.acquire(timeout=timeout)

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            return await self._acquiring.__aenter__()
        except Exception as exc:
            store_error = _translated(exc)
            if store_error is None:
                raise
            raise store_error from exc

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        try:
            await self._acquiring.__aexit__(exc_type, exc, tb)
        except Exception as release_error:
            store_error = _translated(release_error)
            if store_error is None:
                raise
            raise store_error from release_error
        if isinstance(exc, Exception):
            store_error = _translated(exc)
            if store_error is not None:
                raise store_error from exc


class _UpdateRejectedError(Exception):
    """Carries what an `ExecutionUpdate` raised past the error translation."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(cause)
        self.cause = cause


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT_ERRORS):
        return True
    # Client-side "connection is closed" / "pool is closing"; a ValueError
    # subclass (bad argument, bad configuration) is a bug, not an outage.
    return isinstance(exc, pg_errors.InterfaceError) and not isinstance(exc, ValueError)
