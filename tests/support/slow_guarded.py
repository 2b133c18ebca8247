"""A gRPC server whose one method sleeps 30 s behind the service's guard.

For tests of what the guard does with calls that last: shedding beyond its
bound in flight, and counting calls the client cuts short.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2

from service.access_log import AccessLog
from service.metrics import ServiceMetrics
from service.rpc.call import CallMetadata
from service.rpc.guard import guarded

SLOW_SERVICE = "test.Slow"
SLOW_METHOD = "Sleep"

SleepCall = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]


async def _sleeps(
    request: service_pb2.GetExecutionRequest, metadata: CallMetadata, context: object
) -> bytes:
    await asyncio.sleep(30)
    return b""


@asynccontextmanager
async def slow_guarded_server(
    metrics: ServiceMetrics, max_in_flight: int
) -> AsyncIterator[SleepCall]:
    """The server started on 127.0.0.1, and a multi-callable of its sleeping method."""
    method = f"/{SLOW_SERVICE}/{SLOW_METHOD}"
    handler = grpc.method_handlers_generic_handler(
        SLOW_SERVICE,
        {
            SLOW_METHOD: grpc.unary_unary_rpc_method_handler(
                guarded(
                    method,
                    service_pb2.GetExecutionRequest,
                    _sleeps,
                    metrics,
                    AccessLog(None),
                    max_in_flight=max_in_flight,
                )
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            sleep: SleepCall = channel.unary_unary(method)
            yield sleep
    finally:
        await server.stop(0)
