"""Building `ExecutionRow`s for the suite: opaque blobs with arbitrary bytes."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace

from service.store.protocol import ExecutionRow, ExecutionStatusName, Retriever

_numbers = itertools.count()


def blob(seed: str, size: int = 300) -> bytes:
    """Deterministic bytes covering NUL, 0xff and invalid UTF-8: the store must not care."""
    digest = hashlib.sha256(seed.encode()).digest()
    return (b"\x00\xff\xfe" + digest * (size // len(digest) + 1))[:size]


def execution(
    retriever: Retriever,
    *,
    execution_id: str | None = None,
    request_id: str | None = None,
    status: ExecutionStatusName = "pending",
    created_at_us: int = 1_700_000_000_000_000,
    completed_at_us: int | None = None,
    duration_ms: float | None = None,
    credits_used: float = 0.0,
) -> ExecutionRow:
    execution_id = execution_id or f"exec_{next(_numbers):08d}"
    return ExecutionRow(
        execution_id=execution_id,
        namespace_id=retriever.namespace_id,
        retriever_id=retriever.id,
        request_id=request_id,
        status=status,
        created_at_us=created_at_us,
        completed_at_us=completed_at_us,
        duration_ms=duration_ms,
        credits_used=credits_used,
        detail=blob(f"detail {execution_id}", 1000),
        summary=blob(f"summary {execution_id}", 120),
        etag=f'"{execution_id}-1"',
    )


def next_version(row: ExecutionRow, **changes: object) -> ExecutionRow:
    """The row as a writer would store it next: new blobs, a new etag."""
    version = int(row.etag.strip('"').rsplit("-", 1)[1]) + 1
    return replace(
        row,
        detail=blob(f"detail {row.execution_id} v{version}", 1000 + version),
        summary=blob(f"summary {row.execution_id} v{version}", 120),
        etag=f'"{row.execution_id}-{version}"',
        **changes,  # type: ignore[arg-type]
    )
