"""Register the servicers as generic handlers, checked against the service descriptors.

Handlers are registered by hand (not through the generated `add_…_to_server`)
so that responses may be stored bytes: `serialize_response` passes `bytes`
through and serializes messages otherwise. Requests arrive as bytes and are
parsed by `guarded`. Start-up fails naming the method
if a service's RPC has no handler or a handler names no RPC.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from execgate.retrievers.v1 import execution_service_pb2, execution_writer_service_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from service.access_log import AccessLog
from service.metrics import ServiceMetrics
from service.rpc.call import CallMetadata
from service.rpc.guard import guarded
from service.rpc.reads import ExecutionReader
from service.rpc.watch import ExecutionWatcher
from service.rpc.wire import serialize_response
from service.rpc.writes import ExecutionWriter

READ_SERVICE = execution_service_pb2.DESCRIPTOR.services_by_name["ExecutionService"]
WRITE_SERVICE = execution_writer_service_pb2.DESCRIPTOR.services_by_name["ExecutionWriterService"]
SERVICE_NAMES = (READ_SERVICE.full_name, WRITE_SERVICE.full_name)

UnaryHandler = Callable[[Any, CallMetadata, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def generic_handlers(
    reader: ExecutionReader,
    writer: ExecutionWriter,
    watcher: ExecutionWatcher,
    metrics: ServiceMetrics,
    access_log: AccessLog,
    max_in_flight: int,
) -> tuple[grpc.GenericRpcHandler, ...]:
    return (
        _service_handler(
            READ_SERVICE,
            {
                "GetExecution": reader.get_execution,
                "ListExecutions": reader.list_executions,
                "WatchExecution": watcher.watch_execution,
            },
            metrics,
            access_log,
            max_in_flight,
        ),
        _service_handler(
            WRITE_SERVICE,
            {
                "StartExecution": writer.start_execution,
                "ReportStageProgress": writer.report_stage_progress,
                "CompleteExecution": writer.complete_execution,
                "FailExecution": writer.fail_execution,
            },
            metrics,
            access_log,
            max_in_flight,
        ),
    )


def _service_handler(
    service: ServiceDescriptor,
    handlers: Mapping[str, UnaryHandler],
    metrics: ServiceMetrics,
    access_log: AccessLog,
    max_in_flight: int,
) -> grpc.GenericRpcHandler:
    methods = service.methods_by_name
    missing = sorted(set(methods) - set(handlers))
    unknown = sorted(set(handlers) - set(methods))
    if missing or unknown:
        raise RuntimeError(
            f"{service.full_name}: no handler for {missing}, no such RPC for {unknown}"
        )
    method_handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for name, handler in handlers.items():
        method = methods[name]
        if method.client_streaming:
            raise RuntimeError(f"{method.full_name}: client streaming is not served")
        request_class: type[Message] = GetMessageClass(method.input_type)
        full_method = f"/{service.full_name}/{name}"
        metrics.register(full_method, method.server_streaming)
        call = guarded(full_method, request_class, handler, metrics, access_log, max_in_flight)
        # A server-streaming handler writes its messages with `context.write`
        # and returns None, so the same guard serves both kinds.
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        method_handlers[name] = make(call, response_serializer=serialize_response)
    return grpc.method_handlers_generic_handler(service.full_name, method_handlers)
