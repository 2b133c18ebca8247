"""Every kind of `google.api.http` rule, through the test-only library service."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate


def _op(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][path][method]
    return operation


def _own_parameters(operation: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["in"], p["name"]): p for p in operation["parameters"] if "$ref" not in p}


def _body_schema(operation: dict[str, Any]) -> Any:
    return operation["requestBody"]["content"]["application/json"]["schema"]


def _ok_schema(operation: dict[str, Any]) -> Any:
    return operation["responses"]["200"]["content"]["application/json"]["schema"]


def test_is_valid_openapi_3_1(library_document: dict[str, Any]) -> None:
    validate(library_document)


def test_paths_and_methods(library_document: dict[str, Any]) -> None:
    assert {p: sorted(item) for p, item in library_document["paths"].items()} == {
        "/v1/shelves": ["post"],
        "/v1/shelves/{shelf_id}": ["get"],
        "/v1/shelves/{shelf_id}/books": ["get", "post"],
        "/v1/{name}": ["delete", "get"],
        "/v1/archive/{name}": ["get"],
        "/v1/shelves/{book.shelf_id}/books/{book.id}": ["patch"],
        "/v1/{name}:publish": ["post"],
        "/v1/shelves/{shelf_id}:watch": ["get"],
        "/v1/shelves/{shelf_id}/events:watch": ["get"],
    }


def test_streaming_routes_describe_sse_and_ndjson(library_document: dict[str, Any]) -> None:
    operation = _op(library_document, "/v1/shelves/{shelf_id}/events:watch", "get")
    (ok,) = [status for status in operation["responses"] if status.startswith("2")]
    content = operation["responses"][ok]["content"]
    assert set(content) == {"text/event-stream", "application/x-ndjson"}
    event = {"$ref": "#/components/schemas/ShelfEvent"}
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    sse = content["text/event-stream"]
    assert sse["schema"] == event
    assert sse["x-sse-events"] == [
        {"event": "snapshot", "id": True, "data": event},
        {"event": "book_added", "id": True, "data": event},
        {"event": "error", "id": False, "data": error},
    ]
    lines = content["application/x-ndjson"]["schema"]["oneOf"]
    assert [line["properties"] for line in lines] == [{"result": event}, {"error": error}]
    headers = {p["name"] for p in operation["parameters"] if p.get("in") == "header"}
    assert headers == {"Last-Event-ID"}  # resumable: its request has `last_event_id`
    refs = {p["$ref"] for p in operation["parameters"] if "$ref" in p}
    assert "#/components/parameters/IfNoneMatch" not in refs  # a stream has no ETag
    assert "404" in operation["responses"]  # errors before the first event are real statuses

    bare = _op(library_document, "/v1/shelves/{shelf_id}:watch", "get")
    sse = bare["responses"]["200"]["content"]["text/event-stream"]
    assert [e["event"] for e in sse["x-sse-events"]] == ["Book", "error"]
    assert not [p for p in bare["parameters"] if p.get("name") == "Last-Event-ID"]


def test_body_star_is_the_request_message(library_document: dict[str, Any]) -> None:
    operation = _op(library_document, "/v1/shelves", "post")
    assert _body_schema(operation) == {"$ref": "#/components/schemas/CreateShelfRequest"}
    assert _own_parameters(operation) == {}


def test_body_star_leaves_out_path_fields(library_document: dict[str, Any]) -> None:
    operation = _op(library_document, "/v1/{name}:publish", "post")
    body = _body_schema(operation)
    assert body["type"] == "object"
    assert set(body["properties"]) == {"note"}
    assert (
        body["properties"]["note"]["description"] == "Optional note recorded with the publication."
    )


def test_body_field_and_its_query_parameters(library_document: dict[str, Any]) -> None:
    operation = _op(library_document, "/v1/shelves/{shelf_id}/books", "post")
    assert _body_schema(operation) == {"$ref": "#/components/schemas/Book"}
    assert set(_own_parameters(operation)) == {("path", "shelf_id")}
    assert set(operation["responses"]) >= {"413", "415"}


def test_response_body_field(library_document: dict[str, Any]) -> None:
    operation = _op(library_document, "/v1/shelves/{shelf_id}", "get")
    assert _ok_schema(operation) == {"$ref": "#/components/schemas/Shelf"}
    assert "GetShelfResponse" not in library_document["components"]["schemas"]


def test_query_parameters_typed_repeated_and_nested(library_document: dict[str, Any]) -> None:
    operation = _op(library_document, "/v1/shelves/{shelf_id}/books", "get")
    schemas = {name: p["schema"] for (where, name), p in _own_parameters(operation).items()}
    assert schemas == {
        "shelf_id": {"type": "string"},
        "page_size": {"type": "integer", "format": "int32"},
        "max_pages": {"type": "integer", "format": "int64"},
        "min_rating": {"type": "number", "format": "double"},
        "genre": {"$ref": "#/components/schemas/Genre"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "include_unpublished": {"type": "boolean"},
        "filter.author": {"type": "string"},
        "filter.min_pages": {"type": "integer", "format": "int32"},
    }
    genre = library_document["components"]["schemas"]["Genre"]
    assert genre["enum"] == ["fiction", "science", "history"]  # no UNSPECIFIED zero


def test_multi_segment_variables_and_additional_bindings(
    library_document: dict[str, Any],
) -> None:
    primary = _op(library_document, "/v1/{name}", "get")
    extra = _op(library_document, "/v1/archive/{name}", "get")
    assert primary["operationId"] == "LibraryService_GetBook"
    assert extra["operationId"] == "LibraryService_GetBook_1"
    name = _own_parameters(primary)[("path", "name")]
    assert name["schema"]["pattern"] == "^shelves/[^/]+/books/[^/]+$"
    assert name["description"].startswith("Resource name `shelves/{shelf_id}/books/{id}`.")
    assert _own_parameters(extra)[("path", "name")]["schema"]["pattern"] == "^.*$"


def test_nested_path_fields(library_document: dict[str, Any]) -> None:
    operation = _op(library_document, "/v1/shelves/{book.shelf_id}/books/{book.id}", "patch")
    parameters = _own_parameters(operation)
    assert set(parameters) == {("path", "book.shelf_id"), ("path", "book.id")}
    assert parameters[("path", "book.id")]["description"] == "Book identifier within its shelf."
    assert _body_schema(operation) == {"$ref": "#/components/schemas/Book"}
