"""The handlers the in-process channel serves: the service's own, as its gRPC server has them.

The execution services' generic handlers are the very objects the service
registers on its gRPC server (`ExecutionServer.handlers`); health is the
server's servicer, registered by the generated `add_HealthServicer_to_server`
into a collector instead of a server (Watch streams: it is served over gRPC only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from service.server import ExecutionServer


def service_handlers(server: ExecutionServer) -> tuple[grpc.GenericRpcHandler, ...]:
    return (*server.handlers, *health_handlers(server.health))


def health_handlers(servicer: health.aio.HealthServicer) -> tuple[grpc.GenericRpcHandler, ...]:
    collector = HandlerCollector()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, collector)
    return tuple(collector.handlers)


class HandlerCollector:
    """Takes what generated `add_…_to_server` functions register on a server."""

    def __init__(self) -> None:
        self.handlers: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self.handlers.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Any]) -> None:
        pass  # the same handlers as the generic one, for gRPC core's fast lookup
