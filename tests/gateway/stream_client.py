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


@dataclass
class StreamEvent:
    """One event read in either framing: its name, its ID and the whole message (or envelope)."""

    name: str
    id: str | None
    data: Any


async def next_event(
    response: aiohttp.ClientResponse, timeout_s: float = 10.0
) -> StreamEvent | None:
    """The next event of an SSE or NDJSON response (by its Content-Type); None at the end.

    NDJSON lines carry no event name: it is the message's one set oneof member
    (the only non-null field besides `event_id`), or `error` for an error line.
    """
    if response.headers["Content-Type"].startswith("text/event-stream"):
        while (block := await read_sse(response.content, timeout_s)) is not None:
            if block.data_lines:
                return StreamEvent(block.event, block.id, block.data)
        return None
    line = await read_ndjson(response.content, timeout_s)
    if line is None:
        return None
    if "error" in line:
        return StreamEvent("error", None, line["error"])
    result = line["result"]
    (name,) = [key for key, value in result.items() if key != "event_id" and value is not None]
    return StreamEvent(name, result.get("event_id"), result)


async def events_to_the_end(
    response: aiohttp.ClientResponse, timeout_s: float = 10.0
) -> list[StreamEvent]:
    events = []
    while (event := await next_event(response, timeout_s)) is not None:
        events.append(event)
    return events
