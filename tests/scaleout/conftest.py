"""Scale-out tests: real service and gateway processes on one PostgreSQL.

The shared cluster fixtures come from the PostgreSQL harness
(`tests.support.pg_cluster`): no PostgreSQL binaries locally means skip, under CI
means fail.
"""

from __future__ import annotations

from tests.support.pg_cluster import (  # noqa: F401 (fixtures used by name)
    own_pg_cluster,
    pg_database_url,
    pg_server,
    pg_store_url,
)
