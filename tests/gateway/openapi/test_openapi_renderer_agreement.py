"""What the gateway's renderer writes validates against the generated schema, for every
message type in the documents, empty and with every field set."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from execgate.retrievers.v1 import execution_pb2, execution_service_pb2
from execgate.testing.v1 import library_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from jsonschema import Draft202012Validator

from gateway.openapi import build_openapi
from gateway.transcode.descriptor_info import (
    RAW_JSON,
    RAW_JSON_LIST,
    TIMESTAMP,
    has_unspecified_zero,
    is_map,
    is_required_input,
    map_key_value,
    message_class,
)
from gateway.transcode.exceptions import RenderError
from gateway.transcode.renderer import compile_response_renderer

# The documents without comments: only their component schemas matter here.
_EXECUTION_DOCUMENT = build_openapi(
    [execution_service_pb2.DESCRIPTOR.services_by_name["ExecutionService"]], None, "t", "1"
)
_LIBRARY_DOCUMENT = build_openapi(
    [library_pb2.DESCRIPTOR.services_by_name["LibraryService"]], None, "t", "1"
)
# Every message with a component schema (requests only bound to path/query have none).
CASES: list[tuple[Descriptor, dict[str, Any]]] = [
    (message, document)
    for file, document in (
        (execution_pb2.DESCRIPTOR, _EXECUTION_DOCUMENT),
        (execution_service_pb2.DESCRIPTOR, _EXECUTION_DOCUMENT),
        (library_pb2.DESCRIPTOR, _LIBRARY_DOCUMENT),
    )
    for message in file.message_types_by_name.values()
    if message.name in document["components"]["schemas"]
]
_SCALARS: dict[int, Any] = {
    FieldDescriptor.TYPE_STRING: "x",
    FieldDescriptor.TYPE_BOOL: True,
    FieldDescriptor.TYPE_BYTES: b"x",
    FieldDescriptor.TYPE_DOUBLE: 1.5,
    FieldDescriptor.TYPE_FLOAT: 0.25,
}


def _scalar(field: FieldDescriptor) -> Any:
    if field.enum_type is not None:
        return field.enum_type.values[-1].number
    return _SCALARS.get(field.type, 7)  # every integer type


def _fill(message: Message, descriptor: Descriptor, depth: int = 0) -> None:
    """Set every field of `message` to a non-default value (messages 3 levels deep)."""
    if descriptor.full_name == RAW_JSON:
        setattr(message, "json", '{"k":[1,"v",null]}')  # noqa: B010 - no static type
        return
    if descriptor.full_name == RAW_JSON_LIST:
        setattr(message, "json", '[{"k":[1,"v",null]},{}]')  # noqa: B010
        return
    if descriptor.full_name == TIMESTAMP:
        setattr(message, "seconds", 1_764_361_895)  # noqa: B010
        return
    for field in descriptor.fields:
        container = getattr(message, field.name)
        if is_map(field):
            key_field, value_field = map_key_value(field)
            key = _scalar(key_field)
            if value_field.message_type is None:
                container[key] = _scalar(value_field)
            elif depth < 3:
                _fill(container[key], value_field.message_type, depth + 1)
        elif field.is_repeated:
            if field.message_type is None:
                container.append(_scalar(field))
            elif depth < 3:
                _fill(container.add(), field.message_type, depth + 1)
        elif field.message_type is not None:
            if depth < 3:
                _fill(container, field.message_type, depth + 1)
                container.SetInParent()
        else:
            setattr(message, field.name, _scalar(field))


def _validator(document: dict[str, Any], name: str) -> Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return Draft202012Validator(root)


@pytest.mark.parametrize(("descriptor", "document"), CASES, ids=[d.name for d, _ in CASES])
@pytest.mark.parametrize("filled", [False, True], ids=["empty", "filled"])
def test_rendered_messages_validate(
    descriptor: Descriptor, document: dict[str, Any], filled: bool
) -> None:
    message = message_class(descriptor)()
    if filled:
        _fill(message, descriptor)
    try:
        body = orjson.loads(compile_response_renderer(descriptor)(message))
    except RenderError:
        # An unset REQUIRED enum has no REST value (its UNSPECIFIED zero): a backend bug.
        assert not filled
        assert any(
            f.enum_type is not None and has_unspecified_zero(f.enum_type) and is_required_input(f)
            for f in descriptor.fields
        )
        return
    errors = [error.message for error in _validator(document, descriptor.name).iter_errors(body)]
    assert errors == [], body


def test_the_response_messages_are_covered() -> None:
    assert {descriptor.name for descriptor, _ in CASES} >= {
        "ExecutionDetail",
        "ExecutionSummary",
        "ListExecutionsResponse",
        "ListPagination",
        "StageStatistics",
        "RetrieverExecutionStatistics",
        "Book",
        "Shelf",
        "ListBooksResponse",
        "DeleteBookResponse",
    }
