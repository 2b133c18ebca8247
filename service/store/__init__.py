"""Stores of execution records, and `open_store` to pick one from a URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from observability.redaction import redact
from service.store.protocol import Store
from service.store.sqlite import SqliteStore

SQLITE_PREFIX = "sqlite:///"


def open_store(url: str) -> Store:
    """The store a URL names (not yet opened: call `await store.open()`).

    - `sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (the
      path is whatever follows `sqlite:///`);
    - `postgresql://...` / `postgres://...`, a libpq connection URL.
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        if not url.startswith(SQLITE_PREFIX) or len(url) == len(SQLITE_PREFIX):
            raise ValueError(
                f"a SQLite URL looks like sqlite:///path/to/file.db, not {redact(url)!r}"
            )
        path = url[len(SQLITE_PREFIX) :]
        if path == ":memory:" or path.startswith("file:"):
            raise ValueError("the SQLite store needs a database file (WAL does not work in memory)")
        return SqliteStore(path)
    if scheme in ("postgresql", "postgres"):
        # Imported on demand so that SQLite users never load asyncpg.
        from service.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"unknown store URL scheme {scheme!r} in {redact(url)!r}; "
        "use sqlite:///path/to/file.db or postgresql://user@host/db"
    )


__all__ = ["Store", "open_store"]
