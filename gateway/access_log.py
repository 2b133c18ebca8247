"""One JSON log line per request, and JSON formatting for the gateway's other logs.

The line carries what an operator correlates on (request id, route template,
status, duration, upstream gRPC code) and never a request header: the API key
in `Authorization` cannot leak through it.

Access lines bypass `logging`: building a LogRecord and flushing the handler per
request cost ~30 µs on this machine, an `orjson.dumps` plus a batched write
~1 µs. Lines are written to the stream in one batch per event-loop iteration,
so they appear as soon as the request is answered.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass
from typing import BinaryIO, Final

import orjson

from gateway.metrics import UNMATCHED_ROUTE

ERROR_LOGGER: Final = logging.getLogger("execgate.gateway")

# Status logged for a request whose client went away before the answer (nginx's 499).
CLIENT_CLOSED_REQUEST: Final = 499


@dataclass(slots=True)
class RequestRecord:
    """What the gateway learns about one request while handling it; logged at the end."""

    request_id: str
    method: str
    path: str
    started: float  # time.perf_counter()
    route: str = UNMATCHED_ROUTE
    status: int = 0
    grpc_code: str | None = None


class AccessLog:
    """Writes one JSON line per request to `stream` (None: access logging off)."""

    def __init__(self, stream: BinaryIO | None) -> None:
        self._stream = stream
        self._pending: list[bytes] = []

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def write(self, record: RequestRecord, duration_s: float) -> None:
        if self._stream is None:
            return
        line = orjson.dumps(
            {
                "ts": time.time(),
                "request_id": record.request_id,
                "method": record.method,
                "route": record.route,
                "path": record.path,
                "status": record.status,
                "duration_ms": round(duration_s * 1000, 3),
                "grpc_code": record.grpc_code,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
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
        except (OSError, ValueError):  # a closed or broken stderr must not fail requests
            ERROR_LOGGER.warning("dropped %d access log lines", len(lines))


class JsonFormatter(logging.Formatter):
    """Formats a log record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    """Send every log record to stderr as one JSON line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
