"""Prototype: the service on a sync `grpc.server` (thread pool) bridged to its asyncio loop.

Applied by `launch.py service threaded[N]`: the same guarded handlers, each
call submitted from a pool thread to the service's event loop with
`asyncio.run_coroutine_threadsafe` (the store and caches stay single-threaded
on that loop); health is the sync servicer (its Watch does not hold a thread).
Only for measuring: `bench/experiments/floor.py` says a sync server costs less
per call than grpc.aio's (no poller thread hop per completion).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine, Sequence
from concurrent import futures
from typing import Any

import grpc


class _Context:
    """The slice of `grpc.aio.ServicerContext` the handlers use, over a sync context."""

    __slots__ = ("_context",)

    def __init__(self, context: grpc.ServicerContext) -> None:
        self._context = context

    def invocation_metadata(self) -> Any:
        return self._context.invocation_metadata()

    def set_trailing_metadata(self, metadata: Any) -> None:
        self._context.set_trailing_metadata(metadata)

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        if trailing_metadata:
            self._context.set_trailing_metadata(trailing_metadata)
        self._context.abort(code, details)

    def peer(self) -> str:
        return self._context.peer()

    def code(self) -> Any:
        return self._context.code()  # type: ignore[attr-defined]

    def time_remaining(self) -> float | None:
        return self._context.time_remaining()


def _cancel(future: futures.Future[Any]) -> None:
    future.cancel()


def bridge(
    call: Callable[[bytes, Any], Coroutine[Any, Any, Any]], loop: asyncio.AbstractEventLoop
) -> Callable[[bytes, grpc.ServicerContext], Any]:
    def handle(request: bytes, context: grpc.ServicerContext) -> Any:
        future = asyncio.run_coroutine_threadsafe(call(request, _Context(context)), loop)
        context.add_callback(lambda: _cancel(future))
        return future.result()

    return handle


class _Server:
    """A sync server with grpc.aio.Server's async start/stop."""

    def __init__(self, workers: int, options: Sequence[tuple[str, Any]]) -> None:
        self._server = grpc.server(futures.ThreadPoolExecutor(workers), options=options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    async def start(self) -> None:
        self._server.start()

    async def stop(self, grace: float | None) -> None:
        event = self._server.stop(grace)
        await asyncio.get_running_loop().run_in_executor(None, event.wait)


class _Health:
    def __init__(self) -> None:
        from grpc_health.v1 import health

        self.servicer = health.HealthServicer()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.servicer, name)

    async def set(self, service: str, status: Any) -> None:
        self.servicer.set(service, status)

    async def enter_graceful_shutdown(self) -> None:
        self.servicer.enter_graceful_shutdown()


def _patch(owner: object, name: str, value: object) -> None:
    setattr(owner, name, value)


def apply(workers: int) -> None:
    from grpc_health.v1 import health_pb2_grpc

    registry: Any = importlib.import_module("service.rpc.registry")
    server_module: Any = importlib.import_module("service.server")
    original_guarded = registry.guarded

    def guarded(*args: Any) -> Any:
        return bridge(original_guarded(*args), asyncio.get_running_loop())

    _patch(registry, "guarded", guarded)

    class _Grpc:
        def __getattr__(self, name: str) -> Any:
            return getattr(grpc, name)

        class aio:  # noqa: N801
            @staticmethod
            def server(options: Sequence[tuple[str, Any]] = ()) -> Any:
                return _Server(workers, options)

    _patch(server_module, "grpc", _Grpc())

    class _HealthModule:
        class aio:  # noqa: N801
            HealthServicer = _Health

        SERVICE_NAME = "grpc.health.v1.Health"

    _patch(server_module, "health", _HealthModule)
    original_add = health_pb2_grpc.add_HealthServicer_to_server

    def add_health(servicer: Any, server: Any) -> None:
        original_add(servicer.servicer if isinstance(servicer, _Health) else servicer, server)

    class _HealthGrpc:
        add_HealthServicer_to_server = staticmethod(add_health)  # noqa: N815

    _patch(server_module, "health_pb2_grpc", _HealthGrpc)
