"""One JSON line per RPC: request id, full gRPC method, status code, duration, peer.

Written by `service.rpc.guard` when a call ends. The line never carries call
metadata other than the request id, so the API key in `authorization` cannot
leak through it. Like the gateway's access log (`gateway/access_log.py`), lines
bypass `logging` (a LogRecord plus a handler flush per call costs ~30 µs, an
`orjson.dumps` ~1 µs) and are written to the stream in one batch per event-loop
iteration, so they appear as soon as the call is answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import BinaryIO, Final

import orjson

_log: Final = logging.getLogger("execgate.service.access")


class AccessLog:
    """Writes one JSON line per RPC to `stream` (None: access logging off)."""

    def __init__(self, stream: BinaryIO | None) -> None:
        self._stream = stream
        self._pending: list[bytes] = []

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def write(
        self, request_id: str, grpc_method: str, grpc_code: str, duration_s: float, peer: str
    ) -> None:
        if self._stream is None:
            return
        line = orjson.dumps(
            {
                "ts": time.time(),
                "request_id": request_id,
                "grpc_method": grpc_method,
                "grpc_code": grpc_code,
                "duration_ms": round(duration_s * 1000, 3),
                "peer": peer,
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
        except (OSError, ValueError):  # a closed or broken stderr must not fail calls
            _log.warning("dropped %d access log lines", len(lines))
