"""The route table: built once at start-up, then one lookup per request.

Templates are stored in a segment trie keyed by their decoded literals, with
one wildcard child (`*`) and one `**` leaf per node, so a lookup costs one walk
down the path instead of one match per route. The walk tries, at every
segment, the literal child first, then `*`, then `**` (backtracking when a
branch dead-ends): the most specific template wins, decided at the leftmost
segment where candidates differ (`/v1/shelves/{id}` beats `/v1/{a}/{b}` for
`/v1/shelves/x`, and `/v1/{a}/x` loses to `/v1/b/{c}` for `/v1/b/x`); a template
that ends exactly beats a `**` matching zero segments.

Verbs: a path whose last segment has a ':' is first tried with the text after
it as the verb, then as a plain segment (so `{name}` can still be `a:b`).

Methods: a leaf maps each verb to its routes by HTTP method. HEAD is served by
the GET route when no route declares HEAD (the app must then send no body);
a `custom: {kind: "*"}` route serves any method its leaf has no exact route for.
When the path matches some template but no route for the method, the lookup
raises `MethodNotAllowedError` with every method of every matching template (HEAD
added wherever GET is), for the `Allow` header. The path decides before the method:
when a template names a segment literally and matches the whole path, a less specific
template (a variable or `**` there) never serves another method of that path, so
`GET /v1/r/executions/list` is the `POST …/list` route with the wrong method (405), not
an execution called "list"; the `Allow` header then lists that template's methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from google.protobuf.descriptor import ServiceDescriptor

from gateway.routing.annotations import Route, routes_from_services
from gateway.routing.compiled import CompiledTemplate, compile_template
from gateway.routing.errors import MethodNotAllowedError, RouteConfigError, RouteNotFoundError
from gateway.routing.request_path import DEFAULT_LIMITS, PathLimits, PathView, split_path


class RouteMatch(NamedTuple):
    """The result of a lookup (a named tuple: built per request, it is cheap)."""

    route: Route
    # Variable values by dotted field path ("book.shelf_id"), decoded per http.proto.
    path_params: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Entry:
    route: Route
    compiled: CompiledTemplate


# verb (None: no verb) -> HTTP method -> the route bound there.
_Leaf = dict[str | None, dict[str, _Entry]]


@dataclass(slots=True)
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    wildcard: _Node | None = None
    ends_here: _Leaf = field(default_factory=dict)  # templates with no further segment
    deep: _Leaf = field(default_factory=dict)  # templates whose `**` starts here

    def child(self, literal: str | None) -> _Node:
        if literal is None:
            if self.wildcard is None:
                self.wildcard = _Node()
            return self.wildcard
        return self.literals.setdefault(literal, _Node())


class RouteTable:
    """All routes of the exposed services; `lookup` is the only per-request call."""

    def __init__(self, routes: Iterable[Route], limits: PathLimits = DEFAULT_LIMITS) -> None:
        """Index `routes`; raise `RouteConfigError` naming both methods of any conflict."""
        self.routes: tuple[Route, ...] = tuple(routes)
        self.limits = limits
        self._root = _Node()
        problems: list[str] = []
        for route in self.routes:
            compiled = compile_template(route.template)
            node = self._root
            for literal in compiled.pattern:
                node = node.child(literal)
            leaf = node.deep if compiled.deep else node.ends_here
            by_method = leaf.setdefault(compiled.verb, {})
            taken = by_method.get(route.http_method)
            if taken is not None:
                problems.append(
                    f"{taken.route.description} and {route.description}: "
                    "equivalent templates for the same HTTP method"
                )
                continue
            by_method[route.http_method] = _Entry(route, compiled)
        if problems:
            raise RouteConfigError(problems)

    @classmethod
    def from_services(
        cls, services: Iterable[ServiceDescriptor], limits: PathLimits = DEFAULT_LIMITS
    ) -> RouteTable:
        """The table of every `google.api.http` rule of `services` (see `annotations`)."""
        return cls(routes_from_services(services), limits)

    def lookup(self, http_method: str, raw_path: str) -> RouteMatch:
        """The route for a request and its path variables.

        `raw_path` is the path as received, still percent-encoded (aiohttp:
        `request.raw_path`; a query string is ignored). Raise `BadPathError`,
        `RouteNotFoundError` or `MethodNotAllowedError`.
        """
        views = split_path(raw_path, self.limits)
        allowed: set[str] = set()
        for view in views:
            walk = _Walk(http_method, allowed)
            entry = _search(self._root, view, 0, walk)
            if entry is not None:
                return RouteMatch(entry.route, entry.compiled.extract(view))
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")
            raise MethodNotAllowedError(allowed)
        raise RouteNotFoundError()


@dataclass(slots=True)
class _Walk:
    """One reading of a path: the method, the methods seen on matching templates, and
    whether a template naming a segment literally matched it (which ends this reading;
    the verbless reading of a `:verb` path is another one)."""

    http_method: str
    allowed: set[str]
    misses: int = 0  # matching templates without a route for the method
    named_literally: bool = False


def _search(node: _Node, view: PathView, depth: int, walk: _Walk) -> _Entry | None:
    segments: Sequence[str] = view.decoded
    if depth == len(segments):
        entry = _pick(node.ends_here, view.verb, walk)
        if entry is not None:
            return entry
    else:
        literal_child = node.literals.get(segments[depth])
        if literal_child is not None:
            misses = walk.misses
            entry = _search(literal_child, view, depth + 1, walk)
            if entry is not None or walk.named_literally:
                return entry
            if walk.misses > misses:  # a more specific template matched, not its method
                walk.named_literally = True
                return None
        if node.wildcard is not None:
            entry = _search(node.wildcard, view, depth + 1, walk)
            if entry is not None or walk.named_literally:
                return entry
    return _pick(node.deep, view.verb, walk)


def _pick(leaf: _Leaf, verb: str | None, walk: _Walk) -> _Entry | None:
    by_method = leaf.get(verb)
    if by_method is None:
        return None
    entry = by_method.get(walk.http_method)
    if entry is None and walk.http_method == "HEAD":
        entry = by_method.get("GET")
    if entry is None:
        entry = by_method.get("*")
    if entry is None:
        walk.allowed.update(by_method)
        walk.misses += 1
    return entry
