"""The process's register of watched executions, woken when one of them changes.

One hub per service process, whatever the number of watchers: it holds one
change subscription on the store (a LISTEN connection on PostgreSQL, one
`data_version` poller on SQLite) and, per watcher, one flag. A change sets
the flags of that execution's watchers; each watcher then reads what it
missed from the store's event log at its own pace. So a change costs the hub
no memory per event, and a watcher that falls behind holds nothing but its
position: there is no per-watcher queue to grow.

When the store can only say "something changed" (SQLite, or PostgreSQL after
a reconnect), the hub asks the store for the positions of every watched
execution in one query per 500 and wakes the watchers that are behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Final

import grpc

from service.errors import ServiceError
from service.metrics import ServiceMetrics
from service.store.protocol import ChangeSubscription, Store, StoreError
from service.store.sql import MAX_POSITIONS

_log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS: Final = 0.1
DEFAULT_MAX_WATCHERS: Final = 10_000


class TooManyWatchersError(ServiceError):
    """This process already serves its maximum number of concurrent watch streams."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This server already serves {limit} watch streams; retry later or on another server",
            reason="TOO_MANY_WATCHERS",
            metadata={"limit": str(limit)},
        )


class Watch:
    """One watcher's registration: its position and its wake-up flag."""

    __slots__ = ("_changed", "closing", "execution_id", "position")

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.position = 0  # the last event this watcher has sent
        self.closing = False  # the server is shutting down
        self._changed = asyncio.Event()

    def wake(self) -> None:
        self._changed.set()

    async def wait(self, seconds: float) -> bool:
        """True when woken (a change, or shutdown) within `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        except TimeoutError:
            return False
        finally:
            self._changed.clear()
        return True


class WatchHub:
    def __init__(
        self,
        store: Store,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        max_watchers: int = DEFAULT_MAX_WATCHERS,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._poll_seconds = poll_seconds
        self._max_watchers = max_watchers
        self._watches: dict[str, set[Watch]] = {}
        self._count = 0
        self._subscription: ChangeSubscription | None = None
        self._recheck: asyncio.Task[None] | None = None
        self._recheck_again = False
        self._closing = False

    @property
    def watchers(self) -> int:
        return self._count

    def _counted(self, change: int) -> None:
        self._count += change
        if self._metrics is not None:
            self._metrics.watch_streams = self._count

    async def start(self) -> None:
        self._subscription = await self._store.subscribe_changes(
            self.changed, poll_seconds=self._poll_seconds
        )

    async def close(self) -> None:
        """Wake every watcher to end its stream, and stop listening."""
        self._closing = True
        for watches in self._watches.values():
            for watch in watches:
                watch.closing = True
                watch.wake()
        if self._recheck is not None:
            self._recheck.cancel()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.close()

    @contextlib.contextmanager
    def watch(self, execution_id: str) -> Iterator[Watch]:
        if self._count >= self._max_watchers:
            raise TooManyWatchersError(self._max_watchers)
        watch = Watch(execution_id)
        watch.closing = self._closing
        self._watches.setdefault(execution_id, set()).add(watch)
        self._counted(+1)
        try:
            yield watch
        finally:
            self._counted(-1)
            watches = self._watches[execution_id]
            watches.discard(watch)
            if not watches:
                del self._watches[execution_id]

    def changed(self, execution_id: str | None) -> None:
        """A change committed: to `execution_id`, or to something (None)."""
        if execution_id is not None:
            for watch in self._watches.get(execution_id, ()):
                watch.wake()
            return
        if self._recheck is not None and not self._recheck.done():
            self._recheck_again = True  # one more pass after the running one
            return
        self._recheck = asyncio.get_running_loop().create_task(self._check_positions())

    async def _check_positions(self) -> None:
        self._recheck_again = True
        while self._recheck_again:
            self._recheck_again = False
            watched = list(self._watches)
            for start in range(0, len(watched), MAX_POSITIONS):
                try:
                    positions = await self._store.event_positions(
                        watched[start : start + MAX_POSITIONS]
                    )
                except StoreError as error:
                    _log.warning("watch hub: cannot read positions (%s)", error)
                    return
                for execution_id, position in positions.items():
                    for watch in self._watches.get(execution_id, ()):
                        if position > watch.position:
                            watch.wake()
