"""Read Server-Sent Events and NDJSON lines from an aiohttp response, as a client would.

The SSE parser follows the WHATWG rules a browser's EventSource applies: lines
end at LF, a blank line dispatches, `:` starts a comment, `data` lines join
with LF. Comments (heartbeats) are returned too, so tests can see them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson


@dataclass
class SseEvent:
    event: str = "message"
    id: str | None = None
    data_lines: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def data(self) -> Any:
        return orjson.loads("\n".join(self.data_lines))


async def read_sse(content: aiohttp.StreamReader, timeout_s: float = 5.0) -> SseEvent | None:
    """The next event or comment block; None at the end of the stream."""
    event = SseEvent()
    seen = False
    while True:
        line = await asyncio.wait_for(content.readline(), timeout_s)
        if not line:
            return event if seen else None
        text = line.decode().rstrip("\n")
        if not text:
            if seen:
                return event
            continue
        seen = True
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if not name:
            event.comments.append(value)
        elif name == "event":
            event.event = value
        elif name == "id":
            event.id = value
        elif name == "data":
            event.data_lines.append(value)


async def read_sse_event(content: aiohttp.StreamReader, timeout_s: float = 5.0) -> SseEvent:
    """The next event that is not only a comment (heartbeats are skipped)."""
    while True:
        event = await read_sse(content, timeout_s)
        assert event is not None, "the stream ended"
        if event.data_lines:
            return event


async def read_ndjson(content: aiohttp.StreamReader, timeout_s: float = 5.0) -> Any:
    """The next non-blank JSON line; None at the end of the stream."""
    while True:
        line = await asyncio.wait_for(content.readline(), timeout_s)
        if not line:
            return None
        if line.strip():
            return orjson.loads(line)
