"""The streams the gateway holds open: counted per API key, and ended at shutdown.

A stream holds a connection, a task and an upstream call for as long as the
client keeps it, so one API key may hold at most `max_per_key` at once (over
it: 429). The key's identity is a hash of its `Authorization` header, kept only
in memory and never logged; requests without the header share one count (the
service refuses them anyway, but not before they took a slot).

At shutdown every stream ends cleanly (the end of a normal stream), so an SSE
client reconnects with `Last-Event-ID` to another replica instead of waiting
for the shutdown timeout to cut it.
"""

from __future__ import annotations

import asyncio
import hashlib


class TooManyStreamsError(Exception):
    """The API key already holds `limit` streams; answered 429 (`gateway.errors.table`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} streams open")
        self.limit = limit


def stream_key(authorization: str | None) -> bytes:
    """The identity a stream is counted under: a digest, never the key itself."""
    if authorization is None:
        return b""
    return hashlib.sha256(authorization.encode("utf-8", "surrogateescape")).digest()


class StreamRegistry:
    """Open streams by key; `closing` is done once the gateway shuts down."""

    def __init__(self, max_per_key: int) -> None:
        self.max_per_key = max_per_key
        self._open: dict[bytes, int] = {}
        self._closing: asyncio.Future[None] | None = None

    def acquire(self, key: bytes) -> bool:
        """Count a new stream under `key`; False (nothing counted) when it holds the maximum."""
        count = self._open.get(key, 0)
        if count >= self.max_per_key:
            return False
        self._open[key] = count + 1
        return True

    def release(self, key: bytes) -> None:
        count = self._open[key] - 1
        if count:
            self._open[key] = count
        else:
            del self._open[key]

    @property
    def closing(self) -> asyncio.Future[None]:
        """Done when streams must end (shutdown); streams wait on it with their upstream."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_future()
        return self._closing

    def close(self) -> None:
        if not self.closing.done():
            self.closing.set_result(None)
