"""A route's request mapper and response renderer, compiled once at start-up.

The unary and the streaming dispatcher both turn an HTTP request into the
route's request message and its replies into JSON the same way; this is the one
place that builds that pair from a `Route`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from google.protobuf.message import Message

from gateway.routing import Route
from gateway.transcode.renderer import MessageRenderer, compile_response_renderer
from gateway.transcode.request_mapper import compile_request_mapper

# (path params, query pairs, body or None, Content-Type) -> request message.
MapRequest = Callable[
    [Mapping[str, str], Iterable[tuple[str, str]], bytes | None, str | None], Message
]


class RouteCodec(NamedTuple):
    map_request: MapRequest
    render: MessageRenderer
    reads_body: bool  # False: the rule has no body, so the request's is never read


def compile_route_codec(route: Route) -> RouteCodec:
    """Raises ValueError naming the field when the route's annotation is unusable."""
    mapper = compile_request_mapper(
        route.request, [field.name for field in route.path_fields], route.body
    )
    return RouteCodec(
        mapper.map_request,
        compile_response_renderer(route.response, route.response_body),
        bool(route.body),
    )
