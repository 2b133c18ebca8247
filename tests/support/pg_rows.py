"""Small builders of store rows for the PostgreSQL-only tests."""

from __future__ import annotations

import secrets
import time

from service.store.protocol import ExecutionRow, Namespace, Retriever, Store


async def seed_retriever(store: Store) -> Retriever:
    """A namespace with one retriever (executions reference both)."""
    token = secrets.token_hex(4)
    now = time.time_ns() // 1000
    namespace = Namespace(f"ns_{token}", f"namespace-{token}", now)
    retriever = Retriever(f"ret_{token}", namespace.id, f"retriever-{token}", now)
    await store.create_namespace(namespace)
    await store.create_retriever(retriever)
    return retriever


def pending_execution(
    retriever: Retriever, *, request_id: str | None = None, detail_size: int = 64
) -> ExecutionRow:
    execution_id = f"exec_{secrets.token_hex(8)}"
    return ExecutionRow(
        execution_id=execution_id,
        namespace_id=retriever.namespace_id,
        retriever_id=retriever.id,
        request_id=request_id,
        status="pending",
        created_at_us=time.time_ns() // 1000,
        completed_at_us=None,
        duration_ms=None,
        credits_used=0.0,
        detail=secrets.token_bytes(detail_size),
        summary=execution_id.encode(),
        etag=f'"{secrets.token_hex(8)}"',
    )
