"""A LibraryService whose GetShelf does what its `shelf_id` asks: the gateway's test backend.

`shelf_id` values:
- `status-<CODE>`: fail with that gRPC code and a `google.rpc.ErrorInfo`
  (reason `PROBE_<CODE>`, domain `execgate`, metadata `{"probe": "<code>"}`);
- `bare-<CODE>`: fail with that code, no details, and a message naming an address;
- `crash`: raise, so grpc.aio answers UNKNOWN "Unexpected <class ...>";
- `echo`: answer the request metadata received, as JSON in `theme`;
- `sleep`: sleep until cancelled (`started`, then `cancelled` is set);
- `etag`: answer with trailing metadata `etag`, `cache-control` and one that is not allow-listed;
- `big`: a 6 KB `theme`; `huge`: a 4 MB one;
- anything else: a plain shelf.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import grpc
import orjson
from execgate.testing.v1 import library_pb2, library_pb2_grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from gateway.config import GatewayConfig
from tests.support.gateway_harness import LIBRARY_SERVICES

PROBE_ETAG = '"probe-v1"'


class ProbeLibrary(library_pb2_grpc.LibraryServiceServicer):
    def __init__(self) -> None:
        self.calls = 0
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def GetShelf(  # noqa: N802 (gRPC method name)
        self,
        request: library_pb2.GetShelfRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> library_pb2.GetShelfResponse:
        self.calls += 1
        shelf_id = request.shelf_id
        kind, _, arg = shelf_id.partition("-")
        if kind == "status":
            await _abort_with_info(context, grpc.StatusCode[arg])
        if kind == "bare":
            await context.abort(grpc.StatusCode[arg], "connect to ipv4:10.1.2.3:50051 failed")
        if shelf_id == "crash":
            raise RuntimeError("secret stack detail /etc/shadow")
        if shelf_id == "sleep":
            self.started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        theme = "plain"
        if shelf_id == "echo":
            theme = orjson.dumps(
                {key: value for key, value in context.invocation_metadata() or ()}
            ).decode()
        if shelf_id == "etag":
            context.set_trailing_metadata(
                (("etag", PROBE_ETAG), ("cache-control", "private"), ("x-internal", "secret"))
            )
        if shelf_id == "big":
            theme = "abcdefghij" * 600
        if shelf_id == "huge":
            theme = "abcdefghij" * 400_000
        return library_pb2.GetShelfResponse(
            shelf=library_pb2.Shelf(id=shelf_id, theme=theme, book_count=3), revision=7
        )

    async def CreateShelf(  # noqa: N802 (gRPC method name)
        self,
        request: library_pb2.CreateShelfRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> library_pb2.Shelf:
        self.calls += 1
        return library_pb2.Shelf(id=request.id, theme=request.theme)

    async def _unimplemented(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the probe")

    # The probe only needs GetShelf and CreateShelf.
    CreateBook = ListBooks = GetBook = UpdateBook = DeleteBook = PublishBook = _unimplemented


async def _abort_with_info(
    context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode
) -> None:
    info = error_details_pb2.ErrorInfo(
        reason=f"PROBE_{code.name}", domain="execgate", metadata={"probe": code.name.lower()}
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=f"probe says {code.name}")
    status.details.append(detail)
    await context.abort(
        code,
        f"probe says {code.name}",
        trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
    )


@dataclass(frozen=True, slots=True)
class ProbeBackend:
    address: str
    servicer: ProbeLibrary
    server: grpc.aio.Server


@asynccontextmanager
async def probe_backend(max_send_bytes: int | None = None) -> AsyncIterator[ProbeBackend]:
    """The probe servicer on 127.0.0.1, a free port, with `grpc.health.v1` SERVING
    (and the server's message size limit on answers when `max_send_bytes` is given)."""
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    options = () if max_send_bytes is None else (("grpc.max_send_message_length", max_send_bytes),)
    server = grpc.aio.server(options=options)
    servicer = ProbeLibrary()
    library_pb2_grpc.add_LibraryServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield ProbeBackend(f"127.0.0.1:{port}", servicer, server)
    finally:
        await server.stop(grace=None)


def probe_gateway_config(probe: ProbeBackend, **changes: Any) -> GatewayConfig:
    """A gateway in front of `probe` on port 0 (5 s call deadline, 1 s shutdown), with `changes`."""
    base = GatewayConfig(
        port=0,
        backend=probe.address,
        services=LIBRARY_SERVICES,
        default_timeout_s=5.0,
        shutdown_timeout_s=1.0,
    )
    return replace(base, **changes)
