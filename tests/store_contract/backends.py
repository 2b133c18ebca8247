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

from service.store.protocol import Store
from service.store.sqlite import SqliteStore

StoreMaker = Callable[[], Store]


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[[pytest.FixtureRequest], StoreMaker]
    marks: tuple[pytest.MarkDecorator, ...] = ()


def _sqlite(request: pytest.FixtureRequest) -> StoreMaker:
    path = request.getfixturevalue("tmp_path") / "store.db"
    return lambda: SqliteStore(path)


BACKENDS: list[Backend] = [
    Backend("sqlite", _sqlite),
]
