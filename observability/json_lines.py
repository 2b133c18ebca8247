"""A stream of JSON lines written in one batch per event-loop iteration.

Exists because the service and the gateway both write one access log line per
call this way and must not import each other. The lines bypass `logging`: a
LogRecord plus a handler flush per call costs far more than an `orjson.dumps`
plus a batched write (docs/performance.md). The batch is written by a callback
scheduled when its first line arrives, so lines appear as soon as the calls
that produced them are answered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import BinaryIO

import orjson


class JsonLinesWriter:
    """Writes JSON objects to `stream`, one a line (None: writing off)."""

    def __init__(self, stream: BinaryIO | None, errors: logging.Logger) -> None:
        self._stream = stream
        self._errors = errors  # where a failed write is reported
        self._pending: list[bytes] = []

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def _append(self, entry: dict[str, object]) -> None:
        """Queues one line; for subclasses, which check `_stream` before building `entry`."""
        line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(line)

    def flush(self) -> None:
        if self._stream is None or not self._pending:
            return
        lines, self._pending = self._pending, []
        try:
            self._stream.write(b"".join(lines))
            self._stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not fail calls
            self._errors.warning("dropped %d access log lines", len(lines))
