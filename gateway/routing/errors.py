"""The exceptions of the routing package, each raised in exactly one situation.

Start-up errors (`TemplateError`, `RouteConfigError`) stop the gateway before it
serves anything. Per-request errors (`BadPathError`, `RouteNotFoundError`,
`MethodNotAllowedError`) are answers, not bugs: the app turns them into 400, 404 and
405 envelopes.
"""

from __future__ import annotations

from collections.abc import Iterable


class RoutingError(Exception):
    """Base of every error the routing package raises on purpose."""


class TemplateError(RoutingError, ValueError):
    """A `google.api.http` path template does not parse (`template.parse_template`)."""

    def __init__(self, template: str, position: int, reason: str) -> None:
        super().__init__(f"invalid path template {template!r} at offset {position}: {reason}")
        self.template = template
        self.position = position
        self.reason = reason


class RouteConfigError(RoutingError):
    """One or more HTTP rules cannot be served; raised at start-up, never per request.

    Every line of the message starts with the full name of the offending method
    (or methods, for a conflict between two rules).
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class BadPathError(RoutingError):
    """The request path is unsafe or malformed, whatever the routes (answer 400).

    `reason` is a short, fixed, client-safe sentence; it never echoes the path.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RouteNotFoundError(RoutingError):
    """No route's template matches the path (answer 404 `route_not_found`)."""


class MethodNotAllowedError(RoutingError):
    """Some route matches the path, but none for the request's method (answer 405).

    `allowed_methods` is sorted, ready for the `Allow` header; it includes HEAD
    wherever GET is allowed (see `table.RouteTable.lookup`).
    """

    def __init__(self, allowed_methods: Iterable[str]) -> None:
        self.allowed_methods = tuple(sorted(set(allowed_methods)))
        super().__init__(f"allowed methods: {', '.join(self.allowed_methods)}")
