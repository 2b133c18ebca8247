"""From a matched route and an aiohttp request to an upstream call and an HTTP response.

One dispatcher per route, chosen by the RPC's kind and built once at start-up
(request mapper, renderer and upstream call, `gateway.unary_rpc`, all made then). Per
request a dispatcher only maps, calls and renders. Server-streaming RPCs get a
`stream_dispatch.StreamingDispatcher` (Server-Sent Events or NDJSON).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import grpc
from aiohttp import hdrs, web
from aiohttp.web import ContentCoding
from google.protobuf import message_factory

from gateway.access_log import RequestRecord
from gateway.metrics import GatewayMetrics
from gateway.route_codec import compile_route_codec
from gateway.routing import Route, RouteMatch
from gateway.stream_dispatch import FailureResponse, StreamingDispatcher, StreamSettings
from gateway.stream_events import q_value
from gateway.stream_limits import StreamRegistry
from gateway.unary_rpc import unary_rpc
from gateway.upstream import (
    REQUEST_TIMEOUT_HEADER,
    call_timeout,
    forwarded_metadata,
    read_body,
    refuse_repeated_headers,
    response_headers,
)

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    default_timeout_s: float
    max_timeout_s: float
    gzip_min_bytes: int


class Dispatcher(Protocol):
    """Serves one route: `record` collects what the access log and metrics report.

    A unary dispatcher returns an unprepared response (the middleware adds
    X-Request-Id). A streaming one prepares and writes its response itself, so
    it must set `X-Request-Id: record.request_id` before `prepare()`, and report
    failures after that point inside the stream (headers are gone by then).
    """

    async def __call__(
        self, request: web.Request, match: RouteMatch, record: RequestRecord
    ) -> web.StreamResponse: ...


class UnaryDispatcher:
    """A unary RPC: one request message in, one JSON body out."""

    __slots__ = ("_map", "_metrics", "_reads_body", "_render", "_rpc", "_settings", "method")

    def __init__(
        self,
        route: Route,
        channel: grpc.aio.Channel,
        settings: DispatchSettings,
        metrics: GatewayMetrics,
    ) -> None:
        self.method = route.grpc_method
        self._map, self._render, self._reads_body = compile_route_codec(route)
        self._settings = settings
        self._metrics = metrics
        self._rpc = unary_rpc(
            channel, route.grpc_method, message_factory.GetMessageClass(route.response).FromString
        )

    async def __call__(
        self, request: web.Request, match: RouteMatch, record: RequestRecord
    ) -> web.StreamResponse:
        refuse_repeated_headers(request.headers)
        body = await read_body(request) if self._reads_body else b""
        message = self._map(
            match.path_params,
            request.rel_url.query.items(),
            body,
            request.headers.get(hdrs.CONTENT_TYPE),
        )
        headers = request.headers
        metadata = forwarded_metadata(headers, record.request_id)
        timeout = call_timeout(
            headers.get(REQUEST_TIMEOUT_HEADER),
            self._settings.default_timeout_s,
            self._settings.max_timeout_s,
        )
        started = time.perf_counter()
        try:
            reply = await self._rpc(message, timeout, metadata)
        except grpc.aio.AioRpcError as error:
            self._observe(record, error.code(), started)
            raise
        except asyncio.CancelledError:
            # The client went away: the RPC is cancelled (the service sees it at once).
            self._observe(record, grpc.StatusCode.CANCELLED, started)
            raise
        self._observe(record, grpc.StatusCode.OK, started)
        metadata_headers = response_headers(reply.initial_metadata, reply.trailing_metadata)
        if not_modified(request, metadata_headers):
            return web.Response(status=304, headers=metadata_headers)  # nothing to render
        return json_response(request, self._render(reply.message), metadata_headers, self._settings)

    def _observe(self, record: RequestRecord, code: grpc.StatusCode, started: float) -> None:
        record.grpc_code = code.name
        self._metrics.observe_upstream(self.method, code.name, time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class StreamContext:
    """What streaming dispatchers share: settings, the open streams, the error renderer."""

    settings: StreamSettings
    streams: StreamRegistry
    failure: FailureResponse


def dispatcher_for(
    route: Route,
    channel: grpc.aio.Channel,
    settings: DispatchSettings,
    metrics: GatewayMetrics,
    streaming: StreamContext,
) -> Dispatcher:
    if route.streaming:
        return StreamingDispatcher(
            route, channel, streaming.settings, streaming.streams, metrics, streaming.failure
        )
    return UnaryDispatcher(route, channel, settings, metrics)


def json_response(
    request: web.Request,
    body: bytes,
    headers: Mapping[str, str],
    settings: DispatchSettings,
) -> web.Response:
    """A 200 JSON answer, gzip-compressed when the client accepts it."""
    response = web.Response(
        body=body,
        content_type=JSON_CONTENT_TYPE,
        headers=headers,
        zlib_executor_size=INLINE_GZIP_MAX_BYTES,
    )
    response.headers[hdrs.VARY] = hdrs.ACCEPT_ENCODING
    if len(body) >= settings.gzip_min_bytes and accepts_gzip(
        request.headers.get(hdrs.ACCEPT_ENCODING)
    ):
        response.enable_compression(ContentCoding.gzip)
    return response


def not_modified(request: web.Request, headers: Mapping[str, str]) -> bool:
    """Whether a GET/HEAD's `If-None-Match` matches the response's ETag (answer 304).

    A `no-store` answer (an execution still in flight) is never revalidated: it may
    change at any moment, so even `If-None-Match: *` gets the full body.
    """
    etag = headers.get("ETag")
    return (
        etag is not None
        and request.method in _CONDITIONAL_METHODS
        and not _is_no_store(headers.get("Cache-Control"))
        and etag_matches(request.headers.get(hdrs.IF_NONE_MATCH), etag)
    )


def _is_no_store(cache_control: str | None) -> bool:
    if not cache_control:
        return False
    return any(
        directive.split("=", 1)[0].strip().lower() == "no-store"
        for directive in cache_control.split(",")
    )


_CONDITIONAL_METHODS = frozenset({"GET", "HEAD"})
# Bodies up to this size are gzipped on the event loop (a thread hop costs more
# than the work); larger ones in aiohttp's executor so the loop never stalls for
# milliseconds (gzip timings in docs/performance.md).
INLINE_GZIP_MAX_BYTES = 64 * 1024
_WEAK_PREFIX = "W/"


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 `If-None-Match` against `etag`: `*`, or a list of entity tags.

    Weak comparison, as RFC 9110 13.1.2 requires for If-None-Match: `W/"v1"` matches
    `"v1"` and the other way round; the opaque quoted parts must be equal.
    """
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = _opaque_tag(etag)
    return wanted is not None and any(
        _opaque_tag(candidate) == wanted for candidate in _split_entity_tags(if_none_match)
    )


def _opaque_tag(entity_tag: str) -> str | None:
    """The quoted part of an entity tag (weak or strong), None when it is not one."""
    tag = entity_tag.strip()
    if tag.startswith(_WEAK_PREFIX):
        tag = tag[len(_WEAK_PREFIX) :]
    if len(tag) < 2 or tag[0] != '"' or tag[-1] != '"' or '"' in tag[1:-1]:
        return None
    return tag


def _split_entity_tags(header: str) -> list[str]:
    # Entity tags are quoted and may contain commas, so split outside quotes.
    tags: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            tags.append("".join(current))
            current = []
        else:
            current.append(char)
    tags.append("".join(current))
    return tags


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether `Accept-Encoding` admits gzip (`gzip` or `*` with a q-value above 0)."""
    if not accept_encoding:
        return False
    wildcard = False
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        allowed = q_value(params) > 0
        if coding == "*":
            wildcard = allowed
        else:
            return allowed
    return wildcard
