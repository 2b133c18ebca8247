"""REST routing from `google.api.http` annotations; pure, no HTTP framework.

parse (`template`) → compile (`compiled`) → split the request path
(`request_path`) → look up (`table`), with the rules read from descriptors by
`annotations`. Build a `RouteTable` once at start-up, call `lookup` per request.
"""

from gateway.routing.annotations import PathField, Route, routes_from_services
from gateway.routing.errors import (
    BadPathError,
    MethodNotAllowedError,
    RouteConfigError,
    RouteNotFoundError,
    RoutingError,
    TemplateError,
)
from gateway.routing.request_path import PathLimits
from gateway.routing.table import RouteMatch, RouteTable

__all__ = [
    "BadPathError",
    "MethodNotAllowedError",
    "PathField",
    "PathLimits",
    "Route",
    "RouteConfigError",
    "RouteMatch",
    "RouteNotFoundError",
    "RouteTable",
    "RoutingError",
    "TemplateError",
    "routes_from_services",
]
