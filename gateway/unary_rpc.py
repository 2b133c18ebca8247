"""One unary RPC for a dispatcher: the reply and its metadata, or `grpc.aio.AioRpcError`.

grpc.aio wraps every call in Python objects: a `UnaryUnaryCall`, `Metadata`
objects, an entry in the channel's WeakSet of active calls with its done
callback, partials. Below them is the Cython call object grpc.aio itself drives
(`cygrpc._AioCall`: create, one batch of all six operations, status). On a
channel grpc.aio made, without interceptors, `CoreUnaryRpc` drives that object
directly, which saves the per-call Python objects (docs/performance.md,
"Unary calls"), with the same gRPC core underneath (service config, retries,
deadlines, compression and keepalive are channel settings, applied in core
either way). It is grpc.aio's private layer: grpcio is pinned (pyproject.toml),
tests/gateway/test_unary_rpc.py covers what the gateway relies on,
and `gateway.grpc_aio_private` checks at start-up that the names exist (if not:
one warning, and the public path). A channel that brings its own `UnaryRpc`
(`DirectCallChannel`: single-process mode's in-process channel, which runs the
handler in the caller's task) is called through that; any other channel (one
with interceptors, say) goes through the public API (`PublicUnaryRpc`).

Cancellation: grpc.aio (1.85) frees what a call received (response, metadata)
only when the coroutine running the call's batch returns; cancelling the task
that awaits it in flight leaks that memory (up to a whole response per
cancelled call; docs/performance.md, "Gateway memory"). So both
implementations run the call in a task the caller never cancels, wait on a
future of their own, and answer a cancelled wait (the HTTP client went away) by
cancelling the RPC in gRPC core: the server sees it at once, the batch
completes, the task frees its buffers as it returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Protocol, runtime_checkable

import grpc
from google.protobuf.message import Message

from gateway.grpc_aio_private import (
    is_grpc_aio_channel,
    missing_private_name,
    private_class,
    warn_public_path,
)

Metadatum = tuple[str, str | bytes]
Metadata = Sequence[Metadatum]
Deserializer = Callable[[bytes], Message]

_CANCELLED_DETAILS: Final = "The HTTP client went away."
# gRPC core's status numbers, as grpc.StatusCode members.
_STATUS_CODES: Final = {code.value[0]: code for code in grpc.StatusCode}


@dataclass(frozen=True, slots=True)
class UnaryReply:
    """A successful call: the response message and the metadata that came with it."""

    message: Message
    initial_metadata: Metadata
    trailing_metadata: Metadata


class UnaryRpc(Protocol):
    """Calls one unary method; raises `grpc.aio.AioRpcError` for a non-OK status."""

    async def __call__(
        self, request: Message, timeout_s: float, metadata: tuple[Metadatum, ...]
    ) -> UnaryReply: ...


@runtime_checkable
class DirectCallChannel(Protocol):
    """A channel with its own `UnaryRpc` (single-process mode's in-process channel)."""

    def direct_unary_rpc(self, method: str, deserialize: Deserializer) -> UnaryRpc: ...


def unary_rpc(channel: grpc.aio.Channel, method: str, deserialize: Deserializer) -> UnaryRpc:
    """The cheapest correct way to call `method` on `channel` (see the module doc)."""
    if isinstance(channel, DirectCallChannel):
        return channel.direct_unary_rpc(method, deserialize)
    if _takes_core_path(channel):
        return CoreUnaryRpc(channel, method, deserialize)
    return PublicUnaryRpc(channel, method, deserialize)


class CoreUnaryRpc:
    """Drives grpc.aio's Cython call object (a channel grpc.aio made, no interceptors)."""

    __slots__ = ("_channel", "_deserialize", "_loop", "_method")

    def __init__(self, channel: grpc.aio.Channel, method: str, deserialize: Deserializer) -> None:
        self._channel: Any = channel._channel  # type: ignore[attr-defined]  # cygrpc.AioChannel
        # The channel's loop, which runs its calls (asyncio's lookup costs a getpid() per call).
        self._loop: asyncio.AbstractEventLoop = channel._loop  # type: ignore[attr-defined]
        self._method = method.encode()
        self._deserialize = deserialize

    async def __call__(
        self, request: Message, timeout_s: float, metadata: tuple[Metadatum, ...]
    ) -> UnaryReply:
        call = self._channel.call(self._method, time.time() + timeout_s, None, None, 0)
        loop = self._loop
        invocation = loop.create_task(call.unary_unary(request.SerializeToString(), metadata, None))
        finished = loop.create_future()
        invocation.add_done_callback(partial(_settle, finished))
        try:
            await finished
        except asyncio.CancelledError:
            if not call.done():
                call.cancel(_CANCELLED_DETAILS)  # in core; `invocation` ends by itself
            raise
        serialized = invocation.result()  # raises what the batch raised, if anything
        status = call._status  # set before the coroutine returned
        initial: Metadata = call._initial_metadata or ()
        trailing: Metadata = status.trailing_metadata() or ()
        code = _STATUS_CODES.get(status.code(), grpc.StatusCode.UNKNOWN)
        if code is not grpc.StatusCode.OK or serialized is None:
            if code is grpc.StatusCode.OK:  # OK without a message: not a valid unary answer
                code, details = grpc.StatusCode.INTERNAL, "no response message"
            else:
                details = status.details()
            raise grpc.aio.AioRpcError(
                code,
                grpc.aio.Metadata.from_tuple(tuple(initial)),
                grpc.aio.Metadata.from_tuple(tuple(trailing)),
                details=details,
                debug_error_string=status.debug_error_string(),
            )
        return UnaryReply(self._deserialize(serialized), initial, trailing)


class PublicUnaryRpc:
    """The same through grpc.aio's public API: any `grpc.aio.Channel` implementation."""

    __slots__ = ("_call",)

    def __init__(self, channel: grpc.aio.Channel, method: str, deserialize: Deserializer) -> None:
        self._call = channel.unary_unary(
            method,
            request_serializer=serialize,
            response_deserializer=deserialize,
        )

    async def __call__(
        self, request: Message, timeout_s: float, metadata: tuple[Metadatum, ...]
    ) -> UnaryReply:
        call = self._call(request, timeout=timeout_s, metadata=metadata)
        try:
            await wait_until_done(call)
        except asyncio.CancelledError:
            cancel_rpc(call)
            raise
        reply = await call  # raises AioRpcError for a non-OK status
        return UnaryReply(
            reply, tuple(await call.initial_metadata()), tuple(await call.trailing_metadata())
        )


def _takes_core_path(channel: grpc.aio.Channel) -> bool:
    """Whether calls on `channel` may bypass grpc.aio's Python layer (see the module doc)."""
    if not is_grpc_aio_channel(channel):
        return False
    missing = missing_private_name(channel)
    if missing is not None:
        warn_public_path(missing)
        return False
    return (
        type(channel) is private_class("grpc.aio._channel", "Channel")
        and not channel._unary_unary_interceptors  # type: ignore[attr-defined]
    )


def _settle(finished: asyncio.Future[None], invocation: asyncio.Task[Any]) -> None:
    if not invocation.cancelled():
        invocation.exception()  # retrieved here: it is re-raised by `result()` if awaited
    if not finished.done():
        finished.set_result(None)


def serialize(message: Message) -> bytes:
    """A request message's bytes: the request serializer of every upstream call."""
    return message.SerializeToString()


async def wait_until_done(call: grpc.aio.Call) -> None:
    """Wait until `call` ends, without cancelling it if this wait is cancelled."""
    finished = asyncio.get_running_loop().create_future()

    def settle(_: object) -> None:
        if not finished.done():
            finished.set_result(None)

    call.add_done_callback(settle)
    await finished


def cancel_rpc(call: grpc.aio.Call) -> None:
    """Cancel the RPC in gRPC core and let the call's task end by itself.

    `call.cancel()` would also cancel the call's task, which leaks (see the
    module doc); the base `Call.cancel` cancels only in core. Any other call
    object (the in-process channel's), or a grpcio without that base class, is
    cancelled the ordinary way.
    """
    if _GRPC_AIO_CALL is not None and isinstance(call, _GRPC_AIO_CALL):
        _GRPC_AIO_CALL.cancel(call)
    else:
        call.cancel()


# grpc.aio's concrete call base class (the public `grpc.aio.Call` is abstract),
# whose `cancel` cancels in core only, bypassing the unary subclass's override
# that also cancels the call's task.
_GRPC_AIO_CALL: Final[Any] = private_class("grpc.aio._call", "Call")
