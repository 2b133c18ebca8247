"""PostgreSQL-only tests: the shared cluster fixtures, and a private cluster
for the tests that crash or stop the server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg_cluster import (  # noqa: F401 (fixtures used by name)
    PgCluster,
    find_server_binaries,
    pg_database_url,
    pg_server,
    pg_store_url,
    shared_server,
)


@pytest.fixture(scope="module")
def private_cluster(request: pytest.FixtureRequest) -> Iterator[PgCluster]:
    """A cluster of this module's own, for tests that stop or crash the server.

    `shared_server` first applies the skip-or-fail rule when there is no
    PostgreSQL at all; with only an external server (EXECGATE_TEST_PG_DSN),
    which a test must not stop, these tests skip.
    """
    shared_server(request.config)
    bin_dir = find_server_binaries()
    if bin_dir is None:
        pytest.skip("stopping the server needs local PostgreSQL binaries (initdb, pg_ctl)")
    cluster = PgCluster.create(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
