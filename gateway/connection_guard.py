"""Per-connection defences of the gateway's HTTP server: caps, read timeouts, slow readers.

aiohttp closes a connection idle between requests after `keepalive_timeout`, but has
no timeout for a request head or body that arrives slowly, no cap on connections and
no bound on how long a client that does not read can hold a response in memory. This
request handler (the protocol of one connection) adds them:

- connection caps, in all and per client address, checked when the connection is
  accepted: over a cap it gets a 503 envelope and is closed (logged at most once per
  `REFUSAL_LOG_INTERVAL_S`, with the count refused meanwhile);
- a header timer, armed when the connection opens and when the first byte of a next
  request arrives, cancelled when the parser has the whole request head: on expiry a
  408 envelope and the connection closes (nginx's `client_header_timeout`);
- a body timer, armed when a head announces a body, cancelled when the body is
  complete: on expiry the handler reading it gets `RequestTimeoutError` (a 408, and
  the connection closes);
- a small transport write buffer (`write_buffer_bytes`), so writes wait for the client
  (aiohttp awaits drain above it), and a send timeout: a client that reads nothing for
  `send_timeout_s` while a response waits for it is disconnected, which frees the
  response (nginx's `send_timeout`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import streams, web

from gateway.errors.overload import ConnectionLimitError, RequestTimeoutError

LOGGER: Final = logging.getLogger("execgate.gateway.connections")
REFUSAL_LOG_INTERVAL_S: Final = 10.0

# How long a connection refused mid-request (header timeout) is kept half-closed.
LINGER_S = 2.0

# Renders a refusal written straight to the transport (no request object exists yet).
RefusalWriter = Callable[[BaseException], bytes]


@dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    header_timeout_s: float
    body_timeout_s: float
    send_timeout_s: float
    write_buffer_bytes: int


class ConnectionCounter:
    """Open connections in all and per client address, against their caps."""

    def __init__(self, max_total: int, max_per_client: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.total = 0
        self.by_client: Counter[str] = Counter()
        self.refused = 0  # since the last log line
        self._logged_at = -REFUSAL_LOG_INTERVAL_S

    def admit(self, client: str) -> ConnectionLimitError | None:
        """Count a new connection from `client`, or say which cap refuses it."""
        if self.total >= self.max_total:
            return self._refuse(ConnectionLimitError("total", self.max_total), client)
        if self.by_client[client] >= self.max_per_client:
            return self._refuse(ConnectionLimitError("client", self.max_per_client), client)
        self.total += 1
        self.by_client[client] += 1
        return None

    def release(self, client: str) -> None:
        self.total -= 1
        left = self.by_client[client] - 1
        if left > 0:
            self.by_client[client] = left
        else:
            del self.by_client[client]  # the table holds only clients with connections

    def _refuse(self, error: ConnectionLimitError, client: str) -> ConnectionLimitError:
        self.refused += 1
        now = time.monotonic()
        if now - self._logged_at >= REFUSAL_LOG_INTERVAL_S:
            LOGGER.warning(
                "refused %d connection(s) in the last %.0f s: %s (last from %s)",
                self.refused,
                min(now - self._logged_at, REFUSAL_LOG_INTERVAL_S),
                error,
                client,
            )
            self.refused = 0
            self._logged_at = now
        return error


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's request handler with the caps and timers of the module doc."""

    def __init__(
        self,
        manager: web.Server,
        *,
        policy: ConnectionPolicy,
        counter: ConnectionCounter,
        refusal: RefusalWriter,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._policy = policy
        self._counter = counter
        self._refusal = refusal
        self._client: str | None = None  # set once admitted
        # The header timer is lazy, as aiohttp's keep-alive timer: arming sets a deadline,
        # and one pending check per connection re-arms itself when it fires early, so a
        # keep-alive request costs no timer of its own (docs/performance.md,
        # "Single-process request path").
        self._header_deadline: float | None = None  # None: no request head awaited
        self._header_timer: asyncio.TimerHandle | None = None  # the pending check
        self._body_timer: asyncio.TimerHandle | None = None
        self._body: streams.StreamReader | None = None  # the body being received
        self._send_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None  # set once refused mid-request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        client = _client_address(transport)
        refused = self._counter.admit(client)
        # uvloop's transports are not subclasses of asyncio's, only alike.
        writable = cast(asyncio.WriteTransport, transport)
        if refused is not None:
            # Never handed to aiohttp: answered, closed (close() flushes the answer first).
            writable.write(self._refusal(refused))
            writable.close()
            return
        self._client = client
        writable.set_write_buffer_limits(high=self._policy.write_buffer_bytes)
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._client is None:
            return  # refused at accept: aiohttp never knew it
        self._counter.release(self._client)
        self._client = None
        for timer in (self._header_timer, self._body_timer, self._send_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = self._send_timer = self._linger_timer = None
        self._header_deadline = None
        self._body = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._linger_timer is not None:
            return  # answered and half-closed: what the client still sends is discarded
        if self._header_deadline is None and self._body is None:
            self._arm_header_timer()  # the first bytes of the next request
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads and self._header_deadline is not None:
            self._header_deadline = None  # the head is in; the pending check will find none
            if self._messages:
                self._watch_body(self._messages[-1][1])
        if self._body is not None and self._body.is_eof():
            self._stop_body_timer()

    def _arm_header_timer(self) -> None:
        self._header_deadline = self._loop.time() + self._policy.header_timeout_s
        if self._header_timer is None:
            self._header_timer = self._loop.call_at(self._header_deadline, self._check_headers)

    def _check_headers(self) -> None:
        self._header_timer = None
        deadline = self._header_deadline
        if deadline is None:
            return  # no head awaited now
        if self._loop.time() < deadline:  # armed again since this check was set
            self._header_timer = self._loop.call_at(deadline, self._check_headers)
            return
        self._headers_timed_out()

    def _headers_timed_out(self) -> None:
        self._header_deadline = None
        if self._current_request is not None:
            # A request is being answered; the next one's head may wait for it.
            self._arm_header_timer()
            return
        transport = self.transport
        if transport is None:
            return
        timeout = RequestTimeoutError("headers", self._policy.header_timeout_s)
        transport.write(self._refusal(timeout))
        # A lingering close, as nginx's: closing while the client is still sending would
        # reset the connection and could discard the 408 before the client reads it. So send
        # the answer and a FIN, drop what still arrives, and close when the client does or
        # LINGER_S later.
        transport.write_eof()
        self._linger_timer = self._loop.call_later(LINGER_S, transport.close)

    def _watch_body(self, payload: streams.StreamReader) -> None:
        if payload.is_eof():
            return
        self._body = payload
        self._body_timer = self._loop.call_later(self._policy.body_timeout_s, self._body_timed_out)

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = None
        self._body = None

    def _body_timed_out(self) -> None:
        body = self._body
        self._body_timer = None
        self._body = None
        if body is not None and not body.is_eof():
            # The handler reading it fails with this, answered 408; the body then counts
            # as ended (aiohttp would otherwise read the stored error again after the
            # answer and log it as unhandled) and the connection closes.
            body.set_exception(RequestTimeoutError("body", self._policy.body_timeout_s))
            body.feed_eof()
            self.close()

    async def _drain_helper(self) -> None:
        # aiohttp awaits this whenever the transport's buffer is over its high-water mark.
        if self.transport is None or not self._paused:
            return await super()._drain_helper()
        self._send_timer = self._loop.call_later(self._policy.send_timeout_s, self._send_stalled)
        try:
            await super()._drain_helper()
        finally:
            if self._send_timer is not None:
                self._send_timer.cancel()
                self._send_timer = None

    def _send_stalled(self) -> None:
        self._send_timer = None
        if self.transport is not None:
            LOGGER.info(
                "closing a connection that read nothing for %g s", self._policy.send_timeout_s
            )
            self.transport.abort()  # frees what was waiting to be written


def _client_address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, (tuple, list)) and peer:
        return str(peer[0])
    return "" if peer is None else str(peer)  # a Unix socket: one client
