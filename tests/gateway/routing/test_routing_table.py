"""The route table: conflicts at build time; specificity, verbs, 404/405 and HEAD per lookup."""

from __future__ import annotations

from typing import Any

import pytest
from execgate.retrievers.v1 import execution_service_pb2
from execgate.testing.v1 import library_pb2

from gateway.routing.errors import (
    BadPathError,
    MethodNotAllowedError,
    RouteConfigError,
    RouteNotFoundError,
)
from gateway.routing.request_path import PathLimits
from gateway.routing.table import RouteTable
from tests.gateway.routing.routing_descriptors import SERVICE, Rpc, build_service, rule


def table(*rules: Any) -> RouteTable:
    """A table of one method per rule, named R0, R1, ... in order."""
    service = build_service(*(Rpc(f"R{index}", http) for index, http in enumerate(rules)))
    return RouteTable.from_services([service])


def hit(routes: RouteTable, method: str, path: str) -> tuple[str, dict[str, str]]:
    match = routes.lookup(method, path)
    return match.route.method.name, match.path_params


def allowed(routes: RouteTable, method: str, path: str) -> tuple[str, ...]:
    with pytest.raises(MethodNotAllowedError) as raised:
        routes.lookup(method, path)
    return raised.value.allowed_methods


@pytest.fixture(scope="module")
def library() -> RouteTable:
    return RouteTable.from_services(
        [
            library_pb2.DESCRIPTOR.services_by_name["LibraryService"],
            library_pb2.DESCRIPTOR.services_by_name["ShelfWatchService"],
            execution_service_pb2.DESCRIPTOR.services_by_name["ExecutionService"],
        ]
    )


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        (
            "GET",
            "/v1/retrievers/ret_1/executions/exec_2",
            ("GetExecution", {"retriever_id": "ret_1", "execution_id": "exec_2"}),
        ),
        (
            "POST",
            "/v1/retrievers/my%20retriever/executions/list?limit=5",
            ("ListExecutions", {"retriever_id": "my retriever"}),
        ),
        ("POST", "/v1/shelves", ("CreateShelf", {})),
        ("GET", "/v1/shelves/s%2F1", ("GetShelf", {"shelf_id": "s/1"})),
        ("GET", "/v1/shelves/s1/books", ("ListBooks", {"shelf_id": "s1"})),
        ("POST", "/v1/shelves/s1/books", ("CreateBook", {"shelf_id": "s1"})),
        ("GET", "/v1/shelves/s1/books/b1", ("GetBook", {"name": "shelves/s1/books/b1"})),
        ("GET", "/v1/shelves/s%2F1/books/b1", ("GetBook", {"name": "shelves/s%2F1/books/b1"})),
        ("GET", "/v1/archive/x/y%2Fz", ("GetBook", {"name": "x/y%2Fz"})),
        ("GET", "/v1/archive", ("GetBook", {"name": ""})),
        (
            "PATCH",
            "/v1/shelves/s1/books/b1",
            ("UpdateBook", {"book.shelf_id": "s1", "book.id": "b1"}),
        ),
        ("DELETE", "/v1/shelves/s1/books/b1", ("DeleteBook", {"name": "shelves/s1/books/b1"})),
        (
            "POST",
            "/v1/shelves/s1/books/b1:publish",
            ("PublishBook", {"name": "shelves/s1/books/b1"}),
        ),
        ("GET", "/v1/shelves/s1:watch", ("WatchShelf", {"shelf_id": "s1"})),
        # Not a known verb: the colon is part of the single-segment value.
        ("GET", "/v1/shelves/s1:other", ("GetShelf", {"shelf_id": "s1:other"})),
        # An encoded colon is never a verb separator.
        ("GET", "/v1/shelves/s1%3Awatch", ("GetShelf", {"shelf_id": "s1:watch"})),
        # No GET on the verb: the verbless reading matches GetBook.
        (
            "GET",
            "/v1/shelves/s1/books/b1:publish",
            ("GetBook", {"name": "shelves/s1/books/b1:publish"}),
        ),
    ],
)
def test_library_and_execution_routes(
    library: RouteTable, method: str, path: str, expected: tuple[str, dict[str, str]]
) -> None:
    assert hit(library, method, path) == expected


@pytest.mark.parametrize(
    ("method", "path", "methods"),
    [
        ("PUT", "/v1/shelves/s1/books/b1", ("DELETE", "GET", "HEAD", "PATCH")),
        ("DELETE", "/v1/shelves", ("POST",)),
        ("PUT", "/v1/shelves/s1/books", ("GET", "HEAD", "POST")),
        ("GET", "/v1/retrievers/r/executions/x/extra", None),
        ("DELETE", "/v1/shelves/s1:watch", ("GET", "HEAD")),
        # The list route names `list` literally: GET there is its wrong method, not
        # GetExecution of an execution called "list".
        ("GET", "/v1/retrievers/r/executions/list", ("POST",)),
        ("HEAD", "/v1/retrievers/r/executions/list", ("POST",)),
    ],
)
def test_library_not_found_and_not_allowed(
    library: RouteTable, method: str, path: str, methods: tuple[str, ...] | None
) -> None:
    if methods is None:
        with pytest.raises(RouteNotFoundError):
            library.lookup(method, path)
    else:
        assert allowed(library, method, path) == methods


@pytest.mark.parametrize(
    "path",
    [
        "/v1/retrievers/r/executions/../../admin",
        "/v1/retrievers/r/executions/%2e%2e",
        "/v1/retrievers//executions/x",
        "/v1/retrievers/r/executions/x/",
        "/v1/retrievers/r/executions/%00",
        "/v1/retrievers/r/executions/%zz",
        "/v1/nothing/../here",
    ],
)
def test_unsafe_paths_are_bad_whatever_the_routes(library: RouteTable, path: str) -> None:
    with pytest.raises(BadPathError):
        library.lookup("GET", path)


def test_double_encoded_slash_is_a_value_not_a_separator(library: RouteTable) -> None:
    assert hit(library, "GET", "/v1/retrievers/a%252Fb/executions/e") == (
        "GetExecution",
        {"retriever_id": "a%2Fb", "execution_id": "e"},
    )
    # %2F inside a segment never adds a segment: this is not a five-segment match.
    with pytest.raises(RouteNotFoundError):
        library.lookup("GET", "/v1/retrievers%2Fr/executions/e")


def test_literal_beats_variable_beats_deep_wildcard() -> None:
    routes = table(
        rule(get="/v1/{a=**}"),
        rule(get="/v1/{a}/x"),
        rule(get="/v1/b/{c}"),
        rule(get="/v1/b/x/{d}"),
        rule(get="/v1/{a}/{b}/{c}"),
    )
    assert hit(routes, "GET", "/v1/b/x") == ("R2", {"c": "x"})  # leftmost literal wins
    assert hit(routes, "GET", "/v1/q/x") == ("R1", {"a": "q"})
    assert hit(routes, "GET", "/v1/b/x/y") == ("R3", {"d": "y"})
    assert hit(routes, "GET", "/v1/q/x/y") == ("R4", {"a": "q", "b": "x", "c": "y"})
    assert hit(routes, "GET", "/v1/q/y") == ("R0", {"a": "q/y"})  # backtracks to `**`
    assert hit(routes, "GET", "/v1/1/2/3/4") == ("R0", {"a": "1/2/3/4"})


def test_exact_end_beats_deep_wildcard_matching_nothing() -> None:
    routes = table(rule(get="/v1/items/{rest=**}"), rule(get="/v1/items"))
    assert hit(routes, "GET", "/v1/items") == ("R1", {})
    assert hit(routes, "GET", "/v1/items/a") == ("R0", {"rest": "a"})


def test_literals_match_decoded() -> None:
    routes = table(rule(get="/v1/caf%C3%A9/{id}"))
    assert hit(routes, "GET", "/v1/caf%c3%a9/1") == ("R0", {"id": "1"})
    assert hit(routes, "GET", "/%76%31/caf%C3%A9/1") == ("R0", {"id": "1"})
    with pytest.raises(RouteNotFoundError):
        routes.lookup("GET", "/v1/cafe/1")


def test_verb_routes_and_plain_routes_coexist() -> None:
    routes = table(
        rule(get="/v1/{name=items/*}"),
        rule(post="/v1/{name=items/*}:run"),
        rule(post="/v1/{name=items/*}:stop"),
    )
    assert hit(routes, "POST", "/v1/items/a:run") == ("R1", {"name": "items/a"})
    assert hit(routes, "POST", "/v1/items/a:stop") == ("R2", {"name": "items/a"})
    assert allowed(routes, "POST", "/v1/items/a") == ("GET", "HEAD")
    # The verb leaf allows POST; the verbless reading (`a:run` as a name) allows GET.
    assert allowed(routes, "PUT", "/v1/items/a:run") == ("GET", "HEAD", "POST")
    with pytest.raises(RouteNotFoundError):
        routes.lookup("POST", "/v1/other/a:run")


def test_root_route() -> None:
    routes = table(rule(get="/"), rule(get="/v1"))
    assert hit(routes, "GET", "/") == ("R0", {})
    assert hit(routes, "GET", "/v1") == ("R1", {})


def test_head_is_served_by_get_unless_declared() -> None:
    routes = table(
        rule(get="/v1/a/{id}"),
        rule(get="/v1/b/{id}"),
        rule(custom={"kind": "HEAD", "path": "/v1/b/{id}"}),
    )
    assert hit(routes, "HEAD", "/v1/a/1") == ("R0", {"id": "1"})
    assert hit(routes, "HEAD", "/v1/b/1") == ("R2", {"id": "1"})
    assert routes.lookup("HEAD", "/v1/a/1").route.http_method == "GET"


def test_wildcard_custom_kind_serves_any_other_method() -> None:
    routes = table(rule(get="/v1/x/{id}"), rule(custom={"kind": "*", "path": "/v1/x/{id}"}))
    assert hit(routes, "GET", "/v1/x/1")[0] == "R0"
    assert hit(routes, "OPTIONS", "/v1/x/1")[0] == "R1"
    assert hit(routes, "DELETE", "/v1/x/1")[0] == "R1"


def test_not_allowed_unions_every_matching_template() -> None:
    routes = table(
        rule(get="/v1/{a}/x"),
        rule(post="/v1/b/{c}"),
        rule(delete="/v1/{a=**}"),
    )
    # `/v1/b/{c}` names `b` literally: it decides, and only its methods are allowed.
    assert allowed(routes, "PUT", "/v1/b/x") == ("POST",)
    assert allowed(routes, "GET", "/v1/b/x") == ("POST",)
    assert allowed(routes, "PUT", "/v1/q/x") == ("GET", "HEAD")  # `x` named literally
    assert allowed(routes, "PUT", "/v1/q/y") == ("DELETE",)
    with pytest.raises(RouteNotFoundError):
        routes.lookup("GET", "/v2")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (rule(get="/v1/items/{id}"), rule(get="/v1/items/{num}")),
        (rule(get="/v1/items/{id}"), rule(get="/v1/items/*")),
        (rule(get="/v1/{id=items/*}"), rule(get="/v1/items/{num}")),
        (rule(post="/v1/{id=**}:go", body="*"), rule(post="/v1/**:go")),
        (rule(get="/v1/caf%C3%A9"), rule(get="/v1/café".replace("é", "%c3%a9"))),
    ],
)
def test_equivalent_templates_for_one_method_conflict(first: Any, second: Any) -> None:
    with pytest.raises(RouteConfigError) as raised:
        table(first, second)
    (problem,) = raised.value.problems
    assert problem.startswith(f"{SERVICE}.R0 (")
    assert f" and {SERVICE}.R1 (" in problem
    assert problem.endswith("equivalent templates for the same HTTP method")


def test_conflict_with_an_additional_binding_names_it() -> None:
    http = rule(get="/v1/items/{id}", additional_bindings=[rule(get="/v1/items/{num}")])
    with pytest.raises(RouteConfigError) as raised:
        table(http)
    assert raised.value.problems == (
        f"{SERVICE}.R0 (GET /v1/items/{{id}}) and "
        f"{SERVICE}.R0 additional_bindings[0] (GET /v1/items/{{num}}): "
        "equivalent templates for the same HTTP method",
    )


def test_overlapping_but_distinct_templates_do_not_conflict() -> None:
    routes = table(
        rule(get="/v1/items/{id}"),
        rule(delete="/v1/items/{id}"),
        rule(get="/v1/items/{id}:export"),
        rule(get="/v1/items/special"),
        rule(get="/v1/items/{id=**}"),
    )
    assert len(routes.routes) == 5


def test_limits_are_the_tables() -> None:
    service = build_service(Rpc("R0", rule(get="/v1/{id}")))
    routes = RouteTable.from_services([service], PathLimits(max_segment_length=3))
    assert hit(routes, "GET", "/v1/abc") == ("R0", {"id": "abc"})
    with pytest.raises(BadPathError):
        routes.lookup("GET", "/v1/abcd")
