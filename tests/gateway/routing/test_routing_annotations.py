"""Routes from `google.api.http` rules: the real protos, and every rule start-up must refuse."""

from __future__ import annotations

from typing import Any

import pytest
from execgate.retrievers.v1 import (
    execution_pb2,
    execution_service_pb2,
    execution_writer_service_pb2,
)
from execgate.testing.v1 import broken_library_pb2, library_pb2

from gateway.routing.annotations import Route, routes_from_services
from gateway.routing.errors import RouteConfigError
from tests.gateway.routing.routing_descriptors import SERVICE, Rpc, build_service, rule

EXECUTION_SERVICE = execution_service_pb2.DESCRIPTOR.services_by_name["ExecutionService"]
LIBRARY_SERVICE = library_pb2.DESCRIPTOR.services_by_name["LibraryService"]
WATCH_SERVICE = library_pb2.DESCRIPTOR.services_by_name["ShelfWatchService"]


def custom(kind: str, path: str) -> dict[str, str]:
    """A `google.api.CustomHttpPattern`, as keyword arguments of `rule(custom=...)`."""
    return {"kind": kind, "path": path}


def routes_by_binding(*services: Any) -> dict[tuple[str, int], Route]:
    return {
        (route.method.name, route.binding_index): route for route in routes_from_services(services)
    }


def test_execution_service_routes() -> None:
    routes = routes_by_binding(EXECUTION_SERVICE)
    assert set(routes) == {("GetExecution", 0), ("ListExecutions", 0), ("WatchExecution", 0)}
    watch = routes["WatchExecution", 0]
    assert watch.http_method == "GET"
    assert watch.template.source == (
        "/v1/retrievers/{retriever_id}/executions/{execution_id}:watch"
    )
    assert watch.streaming

    get = routes["GetExecution", 0]
    assert get.http_method == "GET"
    assert get.template.source == "/v1/retrievers/{retriever_id}/executions/{execution_id}"
    assert get.grpc_method == "/execgate.retrievers.v1.ExecutionService/GetExecution"
    assert get.request is execution_service_pb2.GetExecutionRequest.DESCRIPTOR
    assert get.response is execution_pb2.ExecutionDetail.DESCRIPTOR
    assert (get.body, get.body_field, get.response_body, get.response_body_field) == (
        "",
        None,
        "",
        None,
    )
    assert not get.streaming
    assert get.path_field_names == {"retriever_id", "execution_id"}
    assert [field.name for field in get.path_fields] == ["retriever_id", "execution_id"]

    listing = routes["ListExecutions", 0]
    assert listing.http_method == "POST"
    assert listing.template.source == "/v1/retrievers/{retriever_id}/executions/list"
    assert listing.body == "query"
    request = execution_service_pb2.ListExecutionsRequest.DESCRIPTOR
    assert listing.body_field is request.fields_by_name["query"]
    assert listing.response is execution_service_pb2.ListExecutionsResponse.DESCRIPTOR


def test_library_service_routes_cover_every_rule_kind() -> None:
    routes = routes_by_binding(LIBRARY_SERVICE, WATCH_SERVICE)
    summary = {
        key: (route.http_method, route.template.source, route.body, route.response_body)
        for key, route in routes.items()
    }
    assert summary == {
        ("CreateShelf", 0): ("POST", "/v1/shelves", "*", ""),
        ("GetShelf", 0): ("GET", "/v1/shelves/{shelf_id}", "", "shelf"),
        ("CreateBook", 0): ("POST", "/v1/shelves/{shelf_id}/books", "book", ""),
        ("ListBooks", 0): ("GET", "/v1/shelves/{shelf_id}/books", "", ""),
        ("GetBook", 0): ("GET", "/v1/{name=shelves/*/books/*}", "", ""),
        ("GetBook", 1): ("GET", "/v1/archive/{name=**}", "", ""),
        ("UpdateBook", 0): ("PATCH", "/v1/shelves/{book.shelf_id}/books/{book.id}", "book", ""),
        ("DeleteBook", 0): ("DELETE", "/v1/{name=shelves/*/books/*}", "", ""),
        ("PublishBook", 0): ("POST", "/v1/{name=shelves/*/books/*}:publish", "*", ""),
        ("WatchShelf", 0): ("GET", "/v1/shelves/{shelf_id}:watch", "", ""),
        ("WatchShelfEvents", 0): ("GET", "/v1/shelves/{shelf_id}/events:watch", "", ""),
    }
    assert [key for key, route in routes.items() if route.streaming] == [
        ("WatchShelf", 0),
        ("WatchShelfEvents", 0),
    ]
    assert (
        routes["GetShelf", 0].response_body_field
        is (library_pb2.GetShelfResponse.DESCRIPTOR.fields_by_name["shelf"])
    )
    assert routes["GetBook", 1].grpc_method == "/execgate.testing.v1.LibraryService/GetBook"
    assert "additional_bindings[0]" in routes["GetBook", 1].description


def test_nested_path_fields_resolve_to_descriptor_chains() -> None:
    update = routes_by_binding(LIBRARY_SERVICE)["UpdateBook", 0]
    book_field = library_pb2.UpdateBookRequest.DESCRIPTOR.fields_by_name["book"]
    book = library_pb2.Book.DESCRIPTOR
    assert update.path_field_names == {"book.shelf_id", "book.id"}
    assert [(path.name, path.fields) for path in update.path_fields] == [
        ("book.shelf_id", (book_field, book.fields_by_name["shelf_id"])),
        ("book.id", (book_field, book.fields_by_name["id"])),
    ]
    assert update.body_field is book_field


def test_unannotated_methods_are_skipped() -> None:
    service = build_service(
        Rpc("Get", rule(get="/v1/items/{id}")),
        Rpc("Internal", None),
    )
    assert [route.method.name for route in routes_from_services([service])] == ["Get"]


def test_service_without_any_rule_is_a_configuration_error() -> None:
    writer = execution_writer_service_pb2.DESCRIPTOR.services_by_name["ExecutionWriterService"]
    with pytest.raises(RouteConfigError) as raised:
        routes_from_services([EXECUTION_SERVICE, writer])
    assert raised.value.problems == (
        "execgate.retrievers.v1.ExecutionWriterService: no method has a google.api.http rule",
    )


def test_broken_test_proto_fails_naming_the_method() -> None:
    broken = broken_library_pb2.DESCRIPTOR.services_by_name["BrokenLibraryService"]
    with pytest.raises(RouteConfigError) as raised:
        routes_from_services([LIBRARY_SERVICE, broken])
    assert str(raised.value) == (
        "execgate.testing.v1.BrokenLibraryService.GetPamphlet: path variable 'pamphlet_id': "
        "execgate.testing.v1.GetPamphletRequest has no field 'pamphlet_id'"
    )


@pytest.mark.parametrize(
    "http",
    [
        rule(get="/v1/items/{id}"),
        rule(get="/v1/items/{num}/{kind}/{blob}"),
        rule(get="/v1/items/{inner.name}"),
        rule(get="/v1/items/{inner.child.child.name}"),
        rule(get="/v1/{id=items/*/parts/**}:inspect"),
        rule(delete="/v1/items/{id}", body="*"),
        rule(post="/v1/items", body="inner"),
        rule(put="/v1/items/{inner.name}", body="inner"),
        rule(patch="/v1/items/{id}", body="num"),
        rule(get="/v1/items/{id}", response_body="items"),
        rule(custom=custom("HEAD", "/v1/items/{id}")),
        rule(custom=custom("*", "/v1/anything/{id}")),
        rule(custom=custom("PROPFIND", "/v1/items/{id}"), body="*"),
    ],
)
def test_valid_rules(http: Any) -> None:
    (route,) = routes_from_services([build_service(Rpc("Do", http))])
    assert route.grpc_method == f"/{SERVICE}/Do"


def test_custom_kind_is_the_http_method() -> None:
    (route,) = routes_from_services(
        [build_service(Rpc("Do", rule(custom=custom("PROPFIND", "/v1/x"))))]
    )
    assert route.http_method == "PROPFIND"


def test_server_streaming_methods_are_flagged() -> None:
    (route,) = routes_from_services(
        [build_service(Rpc("Watch", rule(get="/v1/items/{id}:watch"), server_streaming=True))]
    )
    assert route.streaming


M = f"{SERVICE}.Do"


@pytest.mark.parametrize(
    ("rpc", "problem"),
    [
        (
            Rpc("Do", rule(get="/v1/items/{missing}")),
            f"{M}: path variable 'missing': routing.test.v1.Req has no field 'missing'",
        ),
        (
            Rpc("Do", rule(get="/v1/items/{inner.missing}")),
            f"{M}: path variable 'inner.missing': routing.test.v1.Inner has no field 'missing'",
        ),
        (
            Rpc("Do", rule(get="/v1/items/{id.sub}")),
            f"{M}: path variable 'id.sub': field routing.test.v1.Req.id is not a message, "
            "so it has no field 'sub'",
        ),
        (
            Rpc("Do", rule(get="/v1/items/{inner}")),
            f"{M}: path variable 'inner': field routing.test.v1.Req.inner is a message, "
            "not a scalar",
        ),
        (
            Rpc("Do", rule(get="/v1/items/{tags}")),
            f"{M}: path variable 'tags': field routing.test.v1.Req.tags is repeated or a map",
        ),
        (
            Rpc("Do", rule(get="/v1/items/{labels}")),
            f"{M}: path variable 'labels': field routing.test.v1.Req.labels is repeated or a map",
        ),
        (
            Rpc("Do", rule(get="/v1/items/{inners.name}")),
            f"{M}: path variable 'inners.name': field routing.test.v1.Req.inners "
            "is repeated or a map",
        ),
        (
            Rpc("Do", rule(get="/v1/{num=items/*}")),
            f"{M}: path variable 'num': a multi-segment variable needs a string field, "
            "and routing.test.v1.Req.num is not one",
        ),
        (
            Rpc("Do", rule(get="/v1/items/{id}", body="*")),
            f"{M}: GET cannot have a body (body: '*')",
        ),
        (
            Rpc("Do", rule(custom=custom("HEAD", "/v1/items"), body="inner")),
            f"{M}: HEAD cannot have a body (body: 'inner')",
        ),
        (
            Rpc("Do", rule(post="/v1/items", body="missing")),
            f"{M}: body 'missing': routing.test.v1.Req has no top-level field 'missing'",
        ),
        (
            Rpc("Do", rule(post="/v1/items", body="inner.name")),
            f"{M}: body 'inner.name': routing.test.v1.Req has no top-level field 'inner.name'",
        ),
        (
            Rpc("Do", rule(post="/v1/items", body="tags")),
            f"{M}: body 'tags': field routing.test.v1.Req.tags is repeated or a map, "
            "which this gateway does not accept as a body",
        ),
        (
            Rpc("Do", rule(post="/v1/items", body="labels")),
            f"{M}: body 'labels': field routing.test.v1.Req.labels is repeated or a map, "
            "which this gateway does not accept as a body",
        ),
        (
            Rpc("Do", rule(get="/v1/items", response_body="missing")),
            f"{M}: response_body 'missing': routing.test.v1.Resp has no top-level field 'missing'",
        ),
        (
            Rpc("Do", rule(post="/v1/items", body="*"), client_streaming=True),
            f"{M}: client-streaming methods cannot be served over REST",
        ),
        (
            Rpc("Do", rule(body="*")),
            f"{M}: the rule sets no pattern (get, put, post, delete, patch or custom)",
        ),
        (
            Rpc("Do", rule(custom=custom("get", "/v1/items"))),
            f"{M}: custom kind 'get' is not an upper-case HTTP method or '*'",
        ),
        (
            Rpc("Do", rule(custom=custom("", "/v1/items"))),
            f"{M}: custom kind '' is not an upper-case HTTP method or '*'",
        ),
        (
            Rpc("Do", rule(get="/v1/items/{id")),
            f"{M}: invalid path template '/v1/items/{{id' at offset 13: "
            "expected '}' closing the variable",
        ),
        (
            Rpc("Do", rule(get="v1/items")),
            f"{M}: invalid path template 'v1/items' at offset 0: a template starts with '/'",
        ),
    ],
)
def test_invalid_rules_fail_naming_the_method(rpc: Rpc, problem: str) -> None:
    with pytest.raises(RouteConfigError) as raised:
        routes_from_services([build_service(rpc)])
    assert raised.value.problems == (problem,)


def test_invalid_additional_binding_is_named_by_index() -> None:
    http = rule(
        get="/v1/items/{id}",
        additional_bindings=[rule(get="/v2/items/{id}"), rule(get="/v3/items/{nope}")],
    )
    with pytest.raises(RouteConfigError) as raised:
        routes_from_services([build_service(Rpc("Do", http))])
    assert raised.value.problems == (
        f"{M} additional_bindings[1]: path variable 'nope': "
        "routing.test.v1.Req has no field 'nope'",
    )


def test_additional_bindings_nest_one_level_only() -> None:
    http = rule(
        get="/v1/items/{id}",
        additional_bindings=[
            rule(get="/v2/items/{id}", additional_bindings=[rule(get="/v3/items/{id}")])
        ],
    )
    with pytest.raises(RouteConfigError) as raised:
        routes_from_services([build_service(Rpc("Do", http))])
    assert raised.value.problems == (
        f"{M} additional_bindings[0]: additional_bindings nest one level only",
    )


def test_every_problem_is_reported_at_once() -> None:
    service = build_service(
        Rpc("Good", rule(get="/v1/items/{id}")),
        Rpc("BadPathError", rule(get="/v1/items/{nope}")),
        Rpc("BadBody", rule(get="/v1/things", body="*")),
    )
    with pytest.raises(RouteConfigError) as raised:
        routes_from_services([service])
    assert [problem.split(":")[0] for problem in raised.value.problems] == [
        f"{SERVICE}.BadPathError",
        f"{SERVICE}.BadBody",
    ]
    assert str(raised.value) == "\n".join(raised.value.problems)
