"""The PostgreSQL schema, as numbered migrations.

`MIGRATIONS[N - 1]` moves a database from schema version N-1 to N; the
versions applied are rows of `schema_migrations`. Each migration runs in its
own transaction (PostgreSQL DDL is transactional), under the advisory lock
that `PostgresStore.open` holds. Never edit a migration that has shipped:
append a new one.

The tables mirror the SQLite schema (`sqlite_migrations.py`) so that both
stores answer the contract suite the same way; the list indexes repeat
`service.store.sql.SORT_EXPRESSIONS` verbatim so the planner can use them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Both statements are fixed text; they never carry values.
CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    description text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
RECORD_MIGRATION = "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_V1_INITIAL = Migration(
    1,
    "namespaces, retrievers, api keys, executions and their list indexes",
    (
        """
        CREATE TABLE namespaces (
            id            text   PRIMARY KEY,
            name          text   NOT NULL UNIQUE,
            created_at_us bigint NOT NULL
        )
        """,
        """
        CREATE TABLE retrievers (
            id            text   PRIMARY KEY,
            namespace_id  text   NOT NULL REFERENCES namespaces (id),
            name          text   NOT NULL,
            created_at_us bigint NOT NULL,
            UNIQUE (namespace_id, name),
            -- target of the executions' (namespace_id, retriever_id) foreign key
            UNIQUE (namespace_id, id)
        )
        """,
        """
        CREATE TABLE api_keys (
            id            text   PRIMARY KEY,
            key_hash      bytea  NOT NULL UNIQUE,
            permissions   text[] NOT NULL,
            created_at_us bigint NOT NULL
        )
        """,
        """
        CREATE TABLE api_key_namespaces (
            key_id       text NOT NULL REFERENCES api_keys (id),
            namespace_id text NOT NULL REFERENCES namespaces (id),
            PRIMARY KEY (key_id, namespace_id)
        )
        """,
        """
        CREATE TABLE executions (
            execution_id    text             PRIMARY KEY,
            namespace_id    text             NOT NULL,
            retriever_id    text             NOT NULL,
            request_id      text,
            status          text             NOT NULL
                            CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
            created_at_us   bigint           NOT NULL,
            completed_at_us bigint,
            duration_ms     double precision,
            credits_used    double precision NOT NULL,
            detail          bytea            NOT NULL,
            summary         bytea            NOT NULL,
            etag            text             NOT NULL,
            FOREIGN KEY (namespace_id, retriever_id) REFERENCES retrievers (namespace_id, id)
        )
        """,
        # Idempotent starts: one request_id per retriever. A plain unique
        # constraint (NULLs never conflict) so that `ON CONFLICT` can name it.
        """
        ALTER TABLE executions
            ADD CONSTRAINT executions_request_id UNIQUE (retriever_id, request_id)
        """,
        # Listings: one index per sort column, led by the scope every listing
        # filters on (namespace, retriever), so that a COUNT can be answered
        # from the index alone. B-tree indexes scan both directions.
        """
        CREATE INDEX executions_by_created
            ON executions (namespace_id, retriever_id, created_at_us, execution_id)
        """,
        """
        CREATE INDEX executions_by_status_created
            ON executions (namespace_id, retriever_id, status, created_at_us, execution_id)
        """,
        """
        CREATE INDEX executions_by_completed
            ON executions
            (namespace_id, retriever_id, (COALESCE(completed_at_us, -1)), execution_id)
        """,
        """
        CREATE INDEX executions_by_duration
            ON executions
            (namespace_id, retriever_id, (COALESCE(duration_ms, -1)), execution_id)
        """,
        """
        CREATE INDEX executions_by_credits
            ON executions (namespace_id, retriever_id, credits_used, execution_id)
        """,
    ),
)

_V2_LZ4_BLOBS = Migration(
    2,
    "lz4 compression for the detail and summary blobs, where the server has it",
    (
        # A 1,000-document detail (~400 KB of JSON-bearing protobuf) is
        # TOASTed; with the default pglz a read spends ~4 ms decompressing it,
        # with lz4 ~1.7 ms (measured on PostgreSQL 15). A server built without
        # lz4 keeps pglz: same data, slower reads.
        """
        DO $$
        BEGIN
            EXECUTE 'ALTER TABLE executions ALTER COLUMN detail SET COMPRESSION lz4, '
                    'ALTER COLUMN summary SET COMPRESSION lz4';
        EXCEPTION WHEN feature_not_supported THEN
            RAISE NOTICE 'lz4 is not available; the blobs keep the default compression';
        END
        $$
        """,
    ),
)

_V3_COMPLETED_ASCENDING = Migration(
    3,
    "an index for sorting by completed_at ascending with executions in flight last",
    (
        """
        CREATE INDEX executions_by_completed_ascending
            ON executions
            (namespace_id, retriever_id, (COALESCE(completed_at_us, 9223372036854775807)),
             execution_id)
        """,
    ),
)

_V4_EVENT_LOG = Migration(
    4,
    "event log of each execution, for WatchExecution",
    (
        "ALTER TABLE executions ADD COLUMN event_seq bigint NOT NULL DEFAULT 0",
        """
        CREATE TABLE execution_events (
            execution_id text   NOT NULL REFERENCES executions (execution_id),
            seq          bigint NOT NULL,
            payload      bytea  NOT NULL,
            PRIMARY KEY (execution_id, seq)
        )
        """,
    ),
)

_V5_KEY_RATE_LIMITS = Migration(
    5,
    "a key's own rate limit (both NULL: the service's default)",
    (
        """
        ALTER TABLE api_keys
            ADD COLUMN rate_burst      integer,
            ADD COLUMN rate_per_second double precision
        """,
    ),
)

MIGRATIONS: tuple[Migration, ...] = (
    _V1_INITIAL,
    _V2_LZ4_BLOBS,
    _V3_COMPLETED_ASCENDING,
    _V4_EVENT_LOG,
    _V5_KEY_RATE_LIMITS,
)
