"""One JSON line per RPC: request id, full gRPC method, status code, duration, peer.

Written by `service.rpc.guard` when a call ends. The line never carries call
metadata other than the request id, so the API key in `authorization` cannot
leak through it. Like the gateway's access log (`gateway/access_log.py`), lines
bypass `logging` (a LogRecord plus a handler flush per call costs far more than
an `orjson.dumps`) and are written to the stream in one batch per event-loop
iteration (`observability.json_lines`), so they appear as soon as the call is
answered.
"""

from __future__ import annotations

import logging
import time
from typing import BinaryIO, Final

from observability.json_lines import JsonLinesWriter
from observability.log_format import utc_timestamp

_log: Final = logging.getLogger("execgate.service.access")
# The peer of a call made in the same process (single-process mode's in-process
# channel): the gateway in front already wrote the request's one access line,
# with its request id, route, HTTP status and this call's gRPC code.
IN_PROCESS_PEER: Final = "in-process"


class AccessLog(JsonLinesWriter):
    """Writes one JSON line per RPC to `stream` (None: access logging off); calls from
    `IN_PROCESS_PEER` are not logged here (`logs`)."""

    def __init__(self, stream: BinaryIO | None) -> None:
        super().__init__(stream, _log)

    def logs(self, peer: str) -> bool:
        """Whether a call from `peer` gets a line."""
        return self.enabled and peer != IN_PROCESS_PEER

    def write(
        self, request_id: str, grpc_method: str, grpc_code: str, duration_s: float, peer: str
    ) -> None:
        if self._stream is None:
            return
        self._append(
            {
                "ts": utc_timestamp(time.time()),
                "level": "info",
                "logger": "execgate.service.access",
                "msg": "rpc",
                "request_id": request_id,
                "grpc_method": grpc_method,
                "grpc_code": grpc_code,
                "duration_ms": round(duration_s * 1000, 3),
                "peer": peer,
            }
        )
