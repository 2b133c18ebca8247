"""Scale-out tests: real service and gateway processes on one PostgreSQL.

The shared cluster fixtures come from the PostgreSQL harness
(`tests.pg_cluster`): no PostgreSQL binaries locally means skip, under CI
means fail.
"""

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
def own_pg_cluster(request: pytest.FixtureRequest) -> Iterator[PgCluster]:
    """A PostgreSQL server of this module's own, for tests that stop it."""
    shared_server(request.config)  # the harness's skip-or-fail rule
    bin_dir = find_server_binaries()
    if bin_dir is None:
        pytest.skip("stopping the server needs local PostgreSQL binaries (initdb, pg_ctl)")
    cluster = PgCluster.create(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
