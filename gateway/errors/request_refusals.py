"""Refusals of the HTTP request itself, decided before routing: a method the gateway does
not implement, and an `Expect` it cannot meet (RFC 9110 sections 9.1 and 10.1.1)."""

from __future__ import annotations

from typing import Final

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11

# The methods a route (google.api.http: get, put, post, delete, patch) or the routing
# layer's own answers (405 with `Allow`, HEAD for GET) can serve; anything else the
# HTTP parser lets through (CONNECT, WebDAV's PROPFIND, ...) is not implemented here.
IMPLEMENTED_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
)
_CONTINUE: Final = "100-continue"


class MethodNotImplementedError(Exception):
    """The request's method is none the gateway implements (answer 501)."""

    def __init__(self, method: str) -> None:
        super().__init__(f"method not implemented: {method[:32]!r}")


class ExpectationFailedError(Exception):
    """An `Expect` header other than `100-continue` (answer 417, no echo of the value)."""


def refuse_unservable(request: web.BaseRequest) -> None:
    """Raise the refusal for a request no route may see, else return."""
    if request.method not in IMPLEMENTED_METHODS:
        raise MethodNotImplementedError(request.method)
    expect = request.headers.get(hdrs.EXPECT)
    if expect is not None and expect.lower() != _CONTINUE:
        raise ExpectationFailedError()


async def continue_or_defer(request: web.Request) -> None:
    """Every route's `expect_handler`: `100 Continue` as aiohttp's own, but an unmet
    expectation is left to the middleware, which answers it with the envelope (aiohttp's
    default raises a text/plain 417 echoing the header, before any middleware)."""
    expect = request.headers.get(hdrs.EXPECT, "")
    if request.version == HttpVersion11 and expect.lower() == _CONTINUE:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the body proper has not started
