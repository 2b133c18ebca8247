"""The embedded SQLite store: one database file, WAL, durable on return.

Threads and connections (three per store, one per job):
- writes run on one writer thread with its own connection, each inside
  `BEGIN IMMEDIATE` (which also serialises writers in other processes that
  share the file, each waiting up to `busy_timeout`); `synchronous=FULL`
  makes a returned write an fsynced one;
- point reads (`get_execution`, the `find_*` lookups every request makes)
  run inline on the event loop with a read connection: in WAL mode a reader
  never waits for the writer, and the hop to a thread and back costs several
  times the lookup (docs/performance.md, "Small costs behind code choices");
- listings run on a lister thread with its own connection: a page is quick,
  but a mixed-direction sort over many equal values can take tens of
  milliseconds, which must not stall every other request on the loop
  (sqlite3 releases the GIL while it steps).

So a store is used from the event loop that opened it (the read connection
belongs to that thread).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

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
from service.store.sqlite_changes import DataVersionPoller
from service.store.sqlite_migrations import MIGRATIONS

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_MS = 5000

_PERMISSIONS: dict[str, Permission] = {"read": "read", "write": "write"}

_SELECT_EXECUTION = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions "  # noqa: S608 (a constant column list)
    "WHERE execution_id = ? AND namespace_id = ? AND retriever_id = ?"
)
_SELECT_BY_REQUEST_ID = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions "  # noqa: S608 (a constant column list)
    "WHERE retriever_id = ? AND request_id = ?"
)
_INSERT_EXECUTION = (
    f"INSERT INTO executions ({EXECUTION_COLUMNS}) "  # noqa: S608 (a constant column list)
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_EXECUTION = (
    "UPDATE executions SET request_id = ?, status = ?, created_at_us = ?, completed_at_us = ?, "
    "duration_ms = ?, credits_used = ?, detail = ?, summary = ?, etag = ?, event_seq = ? "
    "WHERE execution_id = ?"
)
_INSERT_EVENT = "INSERT INTO execution_events (execution_id, seq, payload) VALUES (?, ?, ?)"
_DROP_OLD_EVENTS = "DELETE FROM execution_events WHERE execution_id = ? AND seq < ?"
_READ_EVENTS = (
    "SELECT seq, payload FROM execution_events WHERE execution_id = ? AND seq > ? "
    "ORDER BY seq LIMIT ?"
)


class SqliteStore:
    """`Store` on one SQLite database file (created, with its folder, on `open`)."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self._path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._writer = _ConnectionThread("sqlite-writer")
        self._lister = _ConnectionThread("sqlite-lister")
        self._read_conn: sqlite3.Connection | None = None  # used only on the event loop

    @property
    def path(self) -> Path:
        return self._path

    # Lifetime.

    async def open(self) -> None:
        if self._writer.running:
            raise RuntimeError("the store is already open")
        try:
            await self._writer.start(self._open_for_writing)
            self._read_conn = _connect(self._path, self._busy_timeout_ms)
            await self._lister.start(lambda: _connect(self._path, self._busy_timeout_ms))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None
        await self._lister.stop()
        await self._writer.stop()

    async def healthy(self) -> bool:
        try:
            self._reader().execute("SELECT 1").fetchone()
        except (sqlite3.Error, StoreError):
            return False
        return True

    # Namespaces, retrievers, keys.

    async def create_namespace(self, namespace: Namespace) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO namespaces (id, name, created_at_us) VALUES (?, ?, ?)",
                (namespace.id, namespace.name, namespace.created_at_us),
            )

        await self._write(insert)

    async def find_namespace(self, id_or_name: str) -> Namespace | None:
        with _unavailable_on_error():
            conn = self._reader()
            for column in ("id", "name"):
                record = conn.execute(
                    f"SELECT id, name, created_at_us FROM namespaces WHERE {column} = ?",  # noqa: S608
                    (id_or_name,),
                ).fetchone()
                if record is not None:
                    return Namespace(*record)
        return None

    async def list_namespaces(self) -> Sequence[Namespace]:
        with _unavailable_on_error():
            records = (
                self._reader()
                .execute("SELECT id, name, created_at_us FROM namespaces ORDER BY name")
                .fetchall()
            )
        return [Namespace(*record) for record in records]

    async def create_retriever(self, retriever: Retriever) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO retrievers (id, namespace_id, name, created_at_us) "
                "VALUES (?, ?, ?, ?)",
                (retriever.id, retriever.namespace_id, retriever.name, retriever.created_at_us),
            )

        await self._write(insert)

    async def find_retriever(self, namespace_id: str, id_or_name: str) -> Retriever | None:
        with _unavailable_on_error():
            conn = self._reader()
            for column in ("id", "name"):
                record = conn.execute(
                    "SELECT id, namespace_id, name, created_at_us FROM retrievers "  # noqa: S608
                    f"WHERE namespace_id = ? AND {column} = ?",
                    (namespace_id, id_or_name),
                ).fetchone()
                if record is not None:
                    return Retriever(*record)
        return None

    async def create_api_key(self, key: ApiKey) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO api_keys "
                "(id, key_hash, permissions, created_at_us, rate_burst, rate_per_second) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key.id,
                    key.key_hash,
                    " ".join(sorted(key.permissions)),
                    key.created_at_us,
                    *rate_columns(key.rate_limit),
                ),
            )
            conn.executemany(
                "INSERT INTO api_key_namespaces (key_id, namespace_id) VALUES (?, ?)",
                [(key.id, namespace_id) for namespace_id in key.namespace_ids],
            )

        await self._write(insert)

    async def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        with _unavailable_on_error():
            conn = self._reader()
            record = conn.execute(
                "SELECT id, permissions, created_at_us, rate_burst, rate_per_second "
                "FROM api_keys WHERE key_hash = ?",
                (key_hash,),
            ).fetchone()
            if record is None:
                return None
            key_id, permissions, created_at_us, burst, rate = record
            namespace_rows = conn.execute(
                "SELECT namespace_id FROM api_key_namespaces WHERE key_id = ? "
                "ORDER BY namespace_id",
                (key_id,),
            ).fetchall()
        return ApiKey(
            id=key_id,
            key_hash=key_hash,
            namespace_ids=tuple(namespace_id for (namespace_id,) in namespace_rows),
            permissions=frozenset(_PERMISSIONS[name] for name in permissions.split()),
            created_at_us=created_at_us,
            rate_limit=rate_limit_from(burst, rate),
        )

    # Executions.

    async def insert_execution(self, row: ExecutionRow) -> tuple[ExecutionRow, bool]:
        def insert(conn: sqlite3.Connection) -> tuple[ExecutionRow, bool]:
            if row.request_id is not None:
                existing = conn.execute(
                    _SELECT_BY_REQUEST_ID, (row.retriever_id, row.request_id)
                ).fetchone()
                if existing is not None:
                    return _execution(existing), False
            conn.execute(_INSERT_EXECUTION, execution_values(row))
            return row, True

        return await self._write(insert)

    async def get_execution(
        self, namespace_id: str, retriever_id: str, execution_id: str
    ) -> ExecutionRow | None:
        # The hottest read: `_unavailable_on_error` without its generator-based context
        # manager (docs/performance.md); a SELECT raises no IntegrityError to let through.
        try:
            record = (
                self._reader()
                .execute(_SELECT_EXECUTION, (execution_id, namespace_id, retriever_id))
                .fetchone()
            )
        except sqlite3.Error as error:
            raise StoreUnavailable(f"sqlite: {error}") from error
        return None if record is None else _execution(record)

    async def update_execution(
        self,
        namespace_id: str,
        retriever_id: str,
        execution_id: str,
        update: ExecutionUpdate,
        events: ChangeEvents | None = None,
    ) -> ExecutionRow:
        def read_modify_write(conn: sqlite3.Connection) -> ExecutionRow:
            record = conn.execute(
                _SELECT_EXECUTION, (execution_id, namespace_id, retriever_id)
            ).fetchone()
            if record is None:
                raise NotFound(execution_id)
            updated, logged = updated_execution(_execution(record), update, events)
            values = execution_values(updated)
            conn.execute(_UPDATE_EXECUTION, (*values[3:], execution_id))
            if logged:
                conn.executemany(_INSERT_EVENT, logged)
                conn.execute(
                    _DROP_OLD_EVENTS, (execution_id, events_expired_before(updated.event_seq))
                )
            return updated

        return await self._write(read_modify_write)

    async def read_events(
        self, execution_id: str, after_seq: int, limit: int
    ) -> Sequence[LoggedEvent]:
        # A short range of one primary key: inline, like the point reads.
        with _unavailable_on_error():
            records = (
                self._reader().execute(_READ_EVENTS, (execution_id, after_seq, limit)).fetchall()
            )
        return [LoggedEvent(seq, payload) for seq, payload in records]

    async def event_positions(self, execution_ids: Sequence[str]) -> Mapping[str, int]:
        check_positions_request(execution_ids)
        if not execution_ids:
            return {}
        placeholders = ", ".join("?" * len(execution_ids))
        with _unavailable_on_error():
            records = (
                self._reader()
                .execute(
                    "SELECT execution_id, event_seq FROM executions "  # noqa: S608
                    f"WHERE execution_id IN ({placeholders})",
                    tuple(execution_ids),
                )
                .fetchall()
            )
        return dict(records)

    async def subscribe_changes(
        self, listener: ChangeListener, *, poll_seconds: float
    ) -> ChangeSubscription:
        # Its own connection: `PRAGMA data_version` moves when any other
        # connection (this process's writer, another process) commits.
        with _unavailable_on_error():
            conn = _connect(self._path, self._busy_timeout_ms)
        return DataVersionPoller.start(conn, listener, poll_seconds)

    async def list_executions(self, query: ListQuery) -> ListPage:
        statements = build_list_statements(query, "qmark")

        def read_page(conn: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], int | None]:
            # One read transaction: the page and the total see the same snapshot.
            conn.execute("BEGIN")
            try:
                records = conn.execute(statements.page.sql, statements.page.params).fetchall()
                total = None
                if statements.count is not None:
                    (total,) = conn.execute(
                        statements.count.sql, statements.count.params
                    ).fetchone()
            finally:
                conn.execute("COMMIT")
            return records, total

        records, total = await self._on_lister(read_page)
        return list_page(records, query.limit, total)

    # Plumbing.

    def _reader(self) -> sqlite3.Connection:
        if self._read_conn is None:
            raise StoreUnavailable("the store is not open")
        return self._read_conn

    async def _on_lister(self, read: Callable[[sqlite3.Connection], T]) -> T:
        def run(conn: sqlite3.Connection) -> T:
            with _unavailable_on_error():
                return read(conn)

        return await self._lister.run(run)

    async def _write(self, change: Callable[[sqlite3.Connection], T]) -> T:
        """Run `change` in one `BEGIN IMMEDIATE` transaction on the writer thread."""
        return await self._writer.run(lambda conn: _transaction(conn, change))

    def _open_for_writing(self) -> sqlite3.Connection:
        """The writer's connection, with the file in WAL mode and migrated."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnavailable(f"cannot create the folder of {self._path}: {error}") from error
        conn = _connect(self._path, self._busy_timeout_ms)
        with _unavailable_on_error():
            try:
                # Persistent in the file; cannot change inside a transaction.
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode != "wal":
                    raise StoreUnavailable(f"could not switch {self._path} to WAL (got {mode})")
                _transaction(conn, _migrate)
            except BaseException:
                conn.close()
                raise
            return conn


class _ConnectionThread:
    """One thread owning one connection; jobs run on it one at a time, in order.

    A job whose caller is cancelled still runs to the end (a write then lands
    but is not acknowledged, which callers must tolerate anyway).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def running(self) -> bool:
        return self._executor is not None

    async def start(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)

        def attach() -> None:
            self._conn = connect()

        await asyncio.get_running_loop().run_in_executor(self._executor, attach)

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            raise StoreUnavailable("the store is not open")

        def on_thread() -> T:
            if self._conn is None:
                raise StoreUnavailable("the store is not open")
            return job(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, on_thread)

    async def stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def detach() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(executor, detach)
        executor.shutdown(wait=True)


def _transaction(conn: sqlite3.Connection, change: Callable[[sqlite3.Connection], T]) -> T:
    with _unavailable_on_error(), _already_exists_on_unique():
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = change(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; we issue BEGIN ourselves.
    # check_same_thread stays on: each connection belongs to one thread.
    with _unavailable_on_error():
        conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this file lacks (called inside BEGIN IMMEDIATE)."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise StoreUnavailable(
            f"database schema version {version} is newer than this build's {len(MIGRATIONS)}"
        )
    for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")


def _execution(record: tuple[Any, ...]) -> ExecutionRow:
    return ExecutionRow(*record)


@contextmanager
def _unavailable_on_error() -> Iterator[None]:
    """sqlite3 failures other than constraint violations: locked, I/O, not a database."""
    try:
        yield
    except sqlite3.IntegrityError:
        raise
    except sqlite3.Error as error:
        raise StoreUnavailable(f"sqlite: {error}") from error


@contextmanager
def _already_exists_on_unique() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as error:
        if error.sqlite_errorname in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
            raise AlreadyExists(str(error)) from error
        raise StoreError(f"sqlite: {error}") from error


__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "SqliteStore"]
