"""The real gRPC service for tests: in this process and event loop, on 127.0.0.1 port 0.

Backed by a fresh SQLite file and seeded with the demo data exactly as
`python -m service demo` seeds it. Used through the `running_service`
fixture of `tests/conftest.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from execgate.retrievers.v1 import (
    execution_service_pb2_grpc,
    execution_writer_service_pb2_grpc,
)

from runtime.tls import ServerCertificate
from service.demo import DemoData, seed
from service.server import ExecutionServer
from service.store import open_store
from service.store.protocol import Store

if TYPE_CHECKING:
    from execgate.retrievers.v1.execution_service_pb2_grpc import ExecutionServiceAsyncStub
    from execgate.retrievers.v1.execution_writer_service_pb2_grpc import (
        ExecutionWriterServiceAsyncStub,
    )

Metadata = tuple[tuple[str, str], ...]


def auth(key: str, namespace: str | None = None, request_id: str | None = None) -> Metadata:
    metadata: Metadata = (("authorization", f"Bearer {key}"),)
    if namespace is not None:
        metadata += (("x-namespace", namespace),)
    if request_id is not None:
        metadata += (("x-request-id", request_id),)
    return metadata


@dataclass(frozen=True)
class Stubs:
    reader: ExecutionServiceAsyncStub
    writer: ExecutionWriterServiceAsyncStub


def stubs(channel: grpc.aio.Channel) -> Stubs:
    return Stubs(
        execution_service_pb2_grpc.ExecutionServiceStub(channel),
        execution_writer_service_pb2_grpc.ExecutionWriterServiceStub(channel),
    )


@dataclass(frozen=True)
class RunningService:
    address: str  # "127.0.0.1:<port>", for grpc.aio.insecure_channel
    demo: DemoData  # namespace, retriever, API key (read+write), execution IDs by status
    store: Store  # the opened store behind the server
    store_url: str
    server: ExecutionServer


@asynccontextmanager
async def start_service(
    directory: Path,
    *,
    store: Store | None = None,
    store_check_seconds: float = 2.0,
    tls: ServerCertificate | None = None,
    **server_options: Any,
) -> AsyncIterator[RunningService]:
    """Start the service on a SQLite file in `directory` (or on `store`, not yet opened).

    `tls`: the gRPC port speaks TLS with this certificate.
    `server_options` go to `ExecutionServer` (watch settings, for instance)."""
    store_url = f"sqlite:///{directory / 'execgate.db'}"
    opened = store or open_store(store_url)
    await opened.open()
    try:
        demo = await seed(opened, directory / "demo-key")
        server = ExecutionServer(opened, store_check_seconds=store_check_seconds, **server_options)
        port = await server.start("127.0.0.1:0", tls)
        try:
            yield RunningService(f"127.0.0.1:{port}", demo, opened, store_url, server)
        finally:
            await server.stop(grace_seconds=1.0)
    finally:
        await opened.close()
