"""Which driver errors the service sees as which store errors (no server needed).

The outage and pool tests provoke the common ones for real; this table pins
the rest, which are hard to provoke on demand (a server still starting up, a
standby reached mid-failover, ...).
"""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions as pg_errors
import pytest

from service.store.postgres import _translated
from service.store.protocol import AlreadyExists, StoreError, StoreUnavailable

UNAVAILABLE = [
    ConnectionRefusedError(111, "refused"),
    ConnectionResetError(104, "reset"),
    TimeoutError(),
    pg_errors.CannotConnectNowError("the database system is starting up"),
    pg_errors.AdminShutdownError("terminating connection due to administrator command"),
    pg_errors.CrashShutdownError("terminating connection because of crash"),
    pg_errors.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    pg_errors.ConnectionFailureError("connection failure"),
    pg_errors.TooManyConnectionsError("sorry, too many clients already"),
    pg_errors.SerializationError("could not serialize access"),
    pg_errors.DeadlockDetectedError("deadlock detected"),
    pg_errors.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    pg_errors.InterfaceError("connection is closed"),
]

PASSED_THROUGH = [
    pg_errors.UndefinedTableError('relation "executions" does not exist'),
    asyncpg.DataError("invalid input for query argument $1"),
    pg_errors.ClientConfigurationError("invalid connection option"),
    ValueError("not a driver error"),
]


@pytest.mark.parametrize("error", UNAVAILABLE, ids=lambda e: type(e).__name__)
def test_outages_become_store_unavailable(error: Exception) -> None:
    translated = _translated(error)
    assert isinstance(translated, StoreUnavailable)
    # The class name only: no host, port or SQL reaches a caller.
    assert str(translated) == f"PostgreSQL is unavailable ({type(error).__name__})"


def test_unique_violations_become_already_exists() -> None:
    assert isinstance(_translated(pg_errors.UniqueViolationError("duplicate key")), AlreadyExists)


def test_other_integrity_violations_are_store_errors_but_not_outages() -> None:
    translated = _translated(pg_errors.ForeignKeyViolationError("violates foreign key"))
    assert type(translated) is StoreError


@pytest.mark.parametrize("error", PASSED_THROUGH, ids=lambda e: type(e).__name__)
def test_bugs_are_not_disguised_as_outages(error: Exception) -> None:
    assert _translated(error) is None
