"""Change notification for SQLite: one cheap `PRAGMA data_version` check per interval.

SQLite cannot push a change to another process, so a process that serves
watchers polls: `PRAGMA data_version` on a connection of its own returns a
new value whenever any other connection (this process's writer thread, or
another worker process on the same file) has committed since the last call.
It reads one counter from the shared WAL index, no table, so one poller per
process costs microseconds per tick, however many executions are watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Self

from service.store.protocol import ChangeListener

_log = logging.getLogger(__name__)


class DataVersionPoller:
    """Calls `listener(None)` on the event loop after each tick that saw a commit."""

    def __init__(self, conn: sqlite3.Connection, listener: ChangeListener, interval: float):
        if interval <= 0:
            raise ValueError("the poll interval must be positive")
        self._conn = conn
        self._listener = listener
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, conn: sqlite3.Connection, listener: ChangeListener, interval: float) -> Self:
        poller = cls(conn, listener, interval)
        poller._task = asyncio.get_running_loop().create_task(poller._poll())
        return poller

    async def _poll(self) -> None:
        try:
            last = self._version()
        except sqlite3.Error:
            last = -1
        while True:
            await asyncio.sleep(self._interval)
            try:
                version = self._version()
            except sqlite3.Error as error:  # the file is busy or gone: try again next tick
                _log.warning("sqlite change check failed: %s", error)
                continue
            if version != last:
                last = version
                self._listener(None)

    def _version(self) -> int:
        (version,) = self._conn.execute("PRAGMA data_version").fetchone()
        return int(version)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._conn.close()
