"""What `bench.watchers` watches: a backend, the stream's URL, and a writer that makes events.

- `execution` (the default): the real service on a SQLite store seeded with the
  demo data; watchers follow one in-flight execution (`WatchExecution`) and the
  writer reports stage progress through the gRPC write path, which commits
  each report and its event in one transaction.
- `library`: the test-only `WatchShelfEvents` (`bench.library_backend`), the
  writer adding books through the gateway; it needs nothing but the test protos.

Each write carries its number in the event's data (a stage's `input_count`, a
book's id), which is how a watcher tells which write an event came from.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any, Protocol

import grpc
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2_grpc as writer_grpc

from bench.processes import ProcessSet, ServerProcess, free_port, python_module_command
from bench.stack import seed_demo, start_service

STAGE = "bench"


class Source(Protocol):
    name: str
    # The event data just before a write's number, and the byte that ends the number.
    marker: bytes
    end: bytes
    backend: ServerProcess | None  # set by start_backend

    def start_backend(self, processes: ProcessSet, work_dir: Path, watchers: int) -> str:
        """Start the backend; its gRPC address."""
        ...

    def gateway_command(self, *flags: str) -> list[str]: ...

    async def prepare(self, gateway_url: str) -> tuple[str, dict[str, str]]:
        """Whatever the stream needs; the stream's path and the watchers' headers."""
        ...

    async def write(self, number: int) -> float:
        """Make event `number` (1, 2, …); returns when the write was sent (time.time())."""
        ...

    async def close(self) -> None: ...


class ExecutionSource:
    name = "execution"
    marker = (
        b'"stage_progress":{"stage_name":"' + STAGE.encode() + b'","statistics":{"input_count":'
    )
    end = b","

    def __init__(self) -> None:
        self._address = ""
        self._channel: grpc.aio.Channel | None = None
        self._metadata: tuple[tuple[str, str], ...] = ()
        self._retriever = ""
        self._execution = ""
        self.backend: ServerProcess | None = None

    def start_backend(self, processes: ProcessSet, work_dir: Path, watchers: int) -> str:
        store_url = f"sqlite:///{work_dir / 'watchers.db'}"
        demo = seed_demo(store_url)
        self._metadata = tuple(demo.grpc_metadata.items())
        self._retriever = demo.retriever_id
        self.backend, self._address = start_service(
            processes, store_url, extra_args=("--max-watchers", str(watchers + 10))
        )
        return self._address

    def gateway_command(self, *flags: str) -> list[str]:
        return python_module_command("gateway", "serve", *flags)

    async def prepare(self, gateway_url: str) -> tuple[str, dict[str, str]]:
        self._channel = grpc.aio.insecure_channel(self._address)
        writer = writer_grpc.ExecutionWriterServiceStub(self._channel)
        started = await writer.StartExecution(
            writer_pb2.StartExecutionRequest(retriever_id=self._retriever, total_stages=1),
            metadata=self._metadata,
        )
        self._execution = started.execution.execution_id
        path = f"/v1/retrievers/{self._retriever}/executions/{self._execution}:watch"
        return path, {name.title(): value for name, value in self._metadata}

    async def write(self, number: int) -> float:
        assert self._channel is not None
        writer = writer_grpc.ExecutionWriterServiceStub(self._channel)
        request = writer_pb2.ReportStageProgressRequest(
            retriever_id=self._retriever,
            execution_id=self._execution,
            stage_name=STAGE,
            current_stage=STAGE,
            statistics=execution_pb2.StageStatistics(
                input_count=number, output_count=number, duration_ms=1.0
            ),
        )
        sent = time.time()
        await writer.ReportStageProgress(request, metadata=self._metadata)
        return sent

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


class LibrarySource:
    name = "library"
    marker = b'"book_added":{"name":"shelves/bench/books/b'
    end = b'"'

    def __init__(self) -> None:
        self._gateway_url = ""
        self.backend: ServerProcess | None = None

    def start_backend(self, processes: ProcessSet, work_dir: Path, watchers: int) -> str:
        port = free_port()
        backend = processes.start(
            "library", python_module_command("bench.library_backend", "serve", str(port))
        )
        backend.wait_for_port(port)
        self.backend = backend
        return f"127.0.0.1:{port}"

    def gateway_command(self, *flags: str) -> list[str]:
        return python_module_command("bench.library_backend", "gateway", *flags)

    async def prepare(self, gateway_url: str) -> tuple[str, dict[str, str]]:
        self._gateway_url = gateway_url
        await asyncio.to_thread(_post, f"{gateway_url}/v1/shelves", {"id": "bench"})
        return "/v1/shelves/bench/events:watch", {}

    async def write(self, number: int) -> float:
        sent = time.time()
        url = f"{self._gateway_url}/v1/shelves/bench/books"
        await asyncio.to_thread(_post, url, {"id": f"b{number}", "title": f"Book {number}"})
        return sent

    async def close(self) -> None:
        pass


SOURCES: dict[str, type[ExecutionSource] | type[LibrarySource]] = {
    "execution": ExecutionSource,
    "library": LibrarySource,
}


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(  # noqa: S310 (loopback http)
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()
