"""The ready file: how a server tells whoever started it that it listens, and where.

A server given `--ready-file PATH` writes, once every listener is bound, one JSON
document `{"pid": 1234, "grpc": "127.0.0.1:50051", "http": …, "metrics": …}` (only the
listeners it has), atomically (a temporary file renamed into place), so a reader sees
either nothing or the whole document. With port 0 this is how the launcher
(`runtime.launcher`) learns the ports the kernel chose, without reading logs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

# The listener names a ready file may carry.
GRPC: Final = "grpc"
HTTP: Final = "http"
METRICS: Final = "metrics"
ADMIN: Final = "admin"  # the gateway's --admin-listen (/metrics, /openapi.json, /docs)


def address(host: str, port: int) -> str:
    """`host:port`, IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def write_ready_file(path: str, addresses: dict[str, str]) -> None:
    """Write the document for this process, atomically; no-op when `path` is empty."""
    if not path:
        return
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps({"pid": os.getpid(), **addresses}))
    os.replace(partial, target)
