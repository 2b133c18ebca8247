"""PostgreSQL-only tests: the shared cluster fixtures, and `own_pg_cluster`
for the tests that crash or stop the server."""

from __future__ import annotations

from tests.support.pg_cluster import (  # noqa: F401 (fixtures used by name)
    own_pg_cluster,
    pg_database_url,
    pg_server,
    pg_store_url,
)
