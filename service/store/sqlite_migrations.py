"""The SQLite schema, as numbered migrations.

Migration N (1-based) moves a database from `PRAGMA user_version` N-1 to N.
Each is a tuple of single statements so that it can run inside the caller's
`BEGIN IMMEDIATE` (``executescript`` would commit first). Never edit a
migration that has shipped: append a new one.
"""

from __future__ import annotations

_V1_INITIAL = (
    """
    CREATE TABLE namespaces (
        id            TEXT    PRIMARY KEY,
        name          TEXT    NOT NULL UNIQUE,
        created_at_us INTEGER NOT NULL
    ) STRICT
    """,
    """
    CREATE TABLE retrievers (
        id            TEXT    PRIMARY KEY,
        namespace_id  TEXT    NOT NULL REFERENCES namespaces (id),
        name          TEXT    NOT NULL,
        created_at_us INTEGER NOT NULL,
        UNIQUE (namespace_id, name),
        -- target of the executions' (namespace_id, retriever_id) foreign key
        UNIQUE (namespace_id, id)
    ) STRICT
    """,
    """
    CREATE TABLE api_keys (
        id            TEXT    PRIMARY KEY,
        key_hash      BLOB    NOT NULL UNIQUE,
        -- sorted permission names separated by spaces, e.g. 'read write'
        permissions   TEXT    NOT NULL,
        created_at_us INTEGER NOT NULL
    ) STRICT
    """,
    """
    CREATE TABLE api_key_namespaces (
        key_id       TEXT NOT NULL REFERENCES api_keys (id),
        namespace_id TEXT NOT NULL REFERENCES namespaces (id),
        PRIMARY KEY (key_id, namespace_id)
    ) STRICT, WITHOUT ROWID
    """,
    """
    CREATE TABLE executions (
        execution_id    TEXT    PRIMARY KEY,
        namespace_id    TEXT    NOT NULL,
        retriever_id    TEXT    NOT NULL,
        request_id      TEXT,
        status          TEXT    NOT NULL
                        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
        created_at_us   INTEGER NOT NULL,
        completed_at_us INTEGER,
        duration_ms     REAL,
        credits_used    REAL    NOT NULL,
        detail          BLOB    NOT NULL,
        summary         BLOB    NOT NULL,
        etag            TEXT    NOT NULL,
        FOREIGN KEY (namespace_id, retriever_id) REFERENCES retrievers (namespace_id, id)
    ) STRICT
    """,
    # Idempotent starts: one request_id per retriever.
    """
    CREATE UNIQUE INDEX executions_request_id
        ON executions (retriever_id, request_id) WHERE request_id IS NOT NULL
    """,
    # Listings: one index per sort column, led by the scope every listing
    # filters on, so that a COUNT or a filtered scan never visits the table.
    # The expressions must match service.store.sql's SORT_EXPRESSIONS exactly
    # for SQLite to use them.
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
        ON executions (namespace_id, retriever_id, COALESCE(completed_at_us, -1), execution_id)
    """,
    """
    CREATE INDEX executions_by_duration
        ON executions (namespace_id, retriever_id, COALESCE(duration_ms, -1), execution_id)
    """,
    """
    CREATE INDEX executions_by_credits
        ON executions (namespace_id, retriever_id, credits_used, execution_id)
    """,
)

# Sorting by completed_at ascending puts executions in flight last, so it
# orders by another expression than descending (service.store.sql.sort_expression).
_V2_COMPLETED_ASCENDING = (
    """
    CREATE INDEX executions_by_completed_ascending
        ON executions
        (namespace_id, retriever_id, COALESCE(completed_at_us, 9223372036854775807), execution_id)
    """,
)

# Live executions (WatchExecution): each execution's position in its event
# log, and the log itself, appended in the write's own transaction.
_V3_EVENT_LOG = (
    "ALTER TABLE executions ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0",
    """
    CREATE TABLE execution_events (
        execution_id TEXT    NOT NULL REFERENCES executions (execution_id),
        seq          INTEGER NOT NULL,
        payload      BLOB    NOT NULL,
        PRIMARY KEY (execution_id, seq)
    ) STRICT, WITHOUT ROWID
    """,
)

# A key's own rate limit (both NULL: the service's default); service/auth.py.
_V4_KEY_RATE_LIMITS = (
    "ALTER TABLE api_keys ADD COLUMN rate_burst INTEGER",
    "ALTER TABLE api_keys ADD COLUMN rate_per_second REAL",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _V1_INITIAL,
    _V2_COMPLETED_ASCENDING,
    _V3_EVENT_LOG,
    _V4_KEY_RATE_LIMITS,
)
