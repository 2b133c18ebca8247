"""The private grpc.aio names the gateway's fast call path uses, looked up without failing.

`gateway.unary_rpc.CoreUnaryRpc` drives grpc.aio's Cython call object and
`cancel_rpc` calls the base class's `cancel` (why: gateway/unary_rpc.py). None
of that is public API, so a grpcio upgrade may rename or drop any of it. Every
such name is listed here and checked when the gateway builds its calls at
start-up: if one is missing, the gateway logs one warning and takes grpc.aio's
public call path, which is slower but behaves the same, instead of failing
requests. docs/upgrading.md lists this check among the things to look at when
grpcio changes.
"""

from __future__ import annotations

import functools
import importlib
import logging
from typing import Any, Final

LOGGER: Final = logging.getLogger("execgate.gateway")

_CYGRPC: Final = "grpc._cython.cygrpc"
# Module, class, and the attributes of that class `CoreUnaryRpc` and `cancel_rpc` use.
REQUIRED_CLASS_ATTRIBUTES: Final[tuple[tuple[str, str, tuple[str, ...]], ...]] = (
    ("grpc.aio._channel", "Channel", ()),
    ("grpc.aio._call", "Call", ("cancel",)),
    (_CYGRPC, "AioChannel", ("call",)),
    (_CYGRPC, "_AioCall", ("unary_unary", "_status", "_initial_metadata", "done", "cancel")),
    (_CYGRPC, "AioRpcStatus", ("code", "details", "trailing_metadata", "debug_error_string")),
)
# What `CoreUnaryRpc` reads from a grpc.aio channel object (set in its __init__).
REQUIRED_CHANNEL_ATTRIBUTES: Final = ("_channel", "_loop", "_unary_unary_interceptors")


def private_class(module: str, name: str) -> Any | None:
    """`module.name`, or None when this grpcio has no such module or class."""
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def missing_private_name(channel: object) -> str | None:
    """The first private name the fast path needs that is missing here, or None if all exist."""
    for module, class_name, attributes in REQUIRED_CLASS_ATTRIBUTES:
        owner = private_class(module, class_name)
        if owner is None:
            return f"{module}.{class_name}"
        for attribute in attributes:
            if not hasattr(owner, attribute):
                return f"{module}.{class_name}.{attribute}"
    for attribute in REQUIRED_CHANNEL_ATTRIBUTES:
        if not hasattr(channel, attribute):
            return f"grpc.aio channel attribute {attribute}"
    return None


@functools.cache
def warn_public_path(missing: str) -> None:
    """Log, once per process, that the fast path is off and why."""
    LOGGER.warning(
        "grpcio lacks %s: upstream calls take grpc.aio's public API (slower, same behaviour)",
        missing,
    )


def is_grpc_aio_channel(channel: object) -> bool:
    """Whether `channel` was made by grpc.aio (not, e.g., single-process mode's own channel)."""
    return type(channel).__module__.startswith("grpc.aio")
