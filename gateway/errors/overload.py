"""The gateway's own refusals under load or abuse (answered by `gateway.errors.table`).

Kept free of imports from the rest of the gateway: the connection layer raises them
and the error table answers them, and neither may import the other.
"""

from __future__ import annotations

from typing import Literal

RequestPart = Literal["headers", "body"]


class RequestTimeoutError(Exception):
    """The client took longer than allowed to send its request head or its body."""

    def __init__(self, part: RequestPart, seconds: float) -> None:
        super().__init__(f"the request {part} did not arrive within {seconds:g} s")
        self.part = part
        self.seconds = seconds


class ConnectionLimitError(Exception):
    """A new connection over the gateway's cap, in all or for one client address."""

    def __init__(self, scope: Literal["total", "client"], limit: int) -> None:
        super().__init__(f"connection limit ({scope}) of {limit} reached")
        self.scope = scope
        self.limit = limit


class OverloadedError(Exception):
    """More requests in flight than the gateway's bound: shed at once instead of queueing."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} requests already in flight")
        self.limit = limit


class ClientThrottledError(Exception):
    """A client address has failed authentication too often; refused until it may retry."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed authentications; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s
