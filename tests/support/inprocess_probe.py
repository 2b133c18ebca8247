"""Probe handlers for the in-process channel: each exercises one rule of a gRPC call."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from singleprocess.channel import InProcessChannel

Context = grpc.aio.ServicerContext[Any, Any]
DETAILS_KEY = "grpc-status-details-bin"


class Probe:
    """Handlers that each exercise one rule; `seen` records what they observed."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}
        self.started = asyncio.Event()

    async def echo(self, request: bytes, context: Context) -> bytes:
        self.seen["metadata"] = tuple(context.invocation_metadata() or ())
        self.seen["peer"] = context.peer()
        await context.send_initial_metadata((("initial", "yes"),))
        context.set_trailing_metadata((("trailing", "yes"),))
        return request.upper()

    async def sleep(self, request: bytes, context: Context) -> bytes:
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.seen["cancelled_with_remaining"] = context.time_remaining()
            raise
        return b""

    async def abort(self, request: bytes, context: Context) -> bytes:
        context.set_trailing_metadata((("etag", '"x"'),))
        await context.abort(
            grpc.StatusCode.NOT_FOUND, "Execution exec_x not found", ((DETAILS_KEY, b"\x08\x05"),)
        )

    async def boom(self, request: bytes, context: Context) -> bytes:
        raise RuntimeError("secret internals")

    async def set_code(self, request: bytes, context: Context) -> bytes:
        context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
        context.set_details("not now")
        return b"ignored"


def probe_channel(probe: Probe) -> InProcessChannel:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        name: grpc.unary_unary_rpc_method_handler(getattr(probe, name))
        for name in ("echo", "sleep", "abort", "boom", "set_code")
    }
    return InProcessChannel([grpc.method_handlers_generic_handler("test.Probe", handlers)])
