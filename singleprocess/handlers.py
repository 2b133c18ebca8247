"""The handlers the in-process channel serves: the service's own, as its gRPC server has them.

The execution services' generic handlers are the very objects the service
registers on its gRPC server (`ExecutionServer.handlers`); health is the
server's servicer, registered here the way `add_HealthServicer_to_server`
does for its unary methods (Watch streams and is served over gRPC only).
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2

from service.server import ExecutionServer


def service_handlers(server: ExecutionServer) -> tuple[grpc.GenericRpcHandler, ...]:
    return (*server.handlers, health_handler(server.health))


def health_handler(servicer: health.aio.HealthServicer) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        health.SERVICE_NAME,
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                servicer.Check,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            ),
            "List": grpc.unary_unary_rpc_method_handler(
                servicer.List,
                request_deserializer=health_pb2.HealthListRequest.FromString,
                response_serializer=health_pb2.HealthListResponse.SerializeToString,
            ),
        },
    )
