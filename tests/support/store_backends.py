"""Every store the contract suite runs against.

To add a store, append a `Backend` to `BACKENDS`. Its `make` gets the test's
fixture request (to reach `tmp_path` or a server fixture) and returns a
function that creates an unopened store on a fresh, empty database reserved
for that test; calling it again gives another store on the same database
(the suite reopens). `make` may `pytest.skip` when its database is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from service.store.postgres import PostgresStore
from service.store.protocol import Store
from service.store.sqlite import SqliteStore
from tests.support.pg_cluster import fresh_schema_url

StoreMaker = Callable[[], Store]


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[[pytest.FixtureRequest], StoreMaker]
    marks: tuple[pytest.MarkDecorator, ...] = ()


def _sqlite(request: pytest.FixtureRequest) -> StoreMaker:
    path = request.getfixturevalue("tmp_path") / "store.db"
    return lambda: SqliteStore(path)


def _postgres(request: pytest.FixtureRequest) -> StoreMaker:
    # A schema of its own in the run's database; skips (or, under CI, fails)
    # when there is no PostgreSQL. See tests/support/pg_cluster.py.
    url = fresh_schema_url(request)
    return lambda: PostgresStore(url)


BACKENDS: list[Backend] = [
    Backend("sqlite", _sqlite),
    Backend("postgres", _postgres, (pytest.mark.postgres,)),
]
