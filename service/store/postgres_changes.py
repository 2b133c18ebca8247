"""Change notification for PostgreSQL: LISTEN on one dedicated connection per process.

Every write that appends events to an execution's log also runs
`pg_notify(CHANGES_CHANNEL, execution_id)` in its transaction; PostgreSQL
delivers it at commit to every session listening, on every replica and
worker. One connection per process listens (not one per watcher) and hands
each notification to the process's watch hub.

When that connection drops, notifications sent meanwhile are lost, so after
reconnecting the listener reports `None` ("anything may have changed") and
the hub re-checks the positions of everything it watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final, Self

import asyncpg

from service.store.protocol import ChangeListener

_log = logging.getLogger(__name__)

CHANGES_CHANNEL: Final = "execgate_execution_changes"
_MIN_RETRY_SECONDS = 1.0


class NotifyListener:
    def __init__(
        self, url: str, listener: ChangeListener, *, connect_timeout: float, retry: float
    ) -> None:
        self._url = url
        self._listener = listener
        self._connect_timeout = connect_timeout
        self._retry = max(retry, _MIN_RETRY_SECONDS)
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, url: str, listener: ChangeListener, *, connect_timeout: float, retry: float
    ) -> Self:
        """Listening when this returns (raises if the first connection fails)."""
        subscription = cls(url, listener, connect_timeout=connect_timeout, retry=retry)
        await subscription._connect()
        subscription._task = asyncio.get_running_loop().create_task(subscription._keep())
        return subscription

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._url, timeout=self._connect_timeout)
        try:
            await conn.add_listener(CHANGES_CHANNEL, self._notified)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(lambda _conn: self._lost.set())
        self._lost.clear()
        self._conn = conn

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._listener(str(payload))

    async def _keep(self) -> None:
        """Reconnect whenever the listening connection is lost."""
        while True:
            await self._lost.wait()
            _log.warning("PostgreSQL change listener lost its connection; reconnecting")
            self._conn = None
            while True:
                try:
                    await self._connect()
                    break
                except Exception as error:  # any failure: keep trying, never give up listening
                    _log.warning("change listener reconnect failed (%s)", type(error).__name__)
                    await asyncio.sleep(self._retry)
            self._listener(None)  # notifications may have been missed meanwhile

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close(timeout=1.0)
            except (OSError, TimeoutError, asyncpg.PostgresError):
                conn.terminate()
