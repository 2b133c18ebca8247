"""Build a one-service proto file at test time, to try HTTP rules protoc would accept.

protoc does not validate `google.api.http` options, so every bad rule the
gateway must refuse is a valid proto; building them here (in a private
descriptor pool) keeps one broken `.proto` file per case out of the tree.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from google.api import (  # type: ignore[import-untyped, unused-ignore]
    annotations_pb2,
    http_pb2,
)
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor

PACKAGE = "routing.test.v1"
SERVICE = f"{PACKAGE}.TestService"
_Field = descriptor_pb2.FieldDescriptorProto
_file_numbers = itertools.count()
_EXTRA_STRINGS = ("name", "rest", "a", "b", "c", "d")


def rule(**fields: Any) -> Any:
    """A `google.api.HttpRule` (typed `Any`: googleapis ships no `py.typed`)."""
    return http_pb2.HttpRule(**fields)


@dataclass(frozen=True)
class Rpc:
    name: str
    http: Any | None  # a `google.api.HttpRule`, or None for an unannotated method
    request: str = "Req"
    response: str = "Resp"
    client_streaming: bool = False
    server_streaming: bool = False


def build_service(*rpcs: Rpc) -> ServiceDescriptor:
    """`routing.test.v1.TestService` with `rpcs`, over the messages below.

    Req   {string id; int64 num; Inner inner; repeated string tags;
           map<string,string> labels; bytes blob; Kind kind; repeated Inner inners;
           string name, rest, a, b, c, d (for table tests' variables)}
    Inner {string name; Inner child; repeated string names}
    Resp  {string text; repeated string items}
    """
    pool = descriptor_pool.DescriptorPool()
    for module in (descriptor_pb2, http_pb2, annotations_pb2):
        dependency = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(dependency)
        pool.Add(dependency)
    file = descriptor_pb2.FileDescriptorProto(
        name=f"routing/test/v1/test_{next(_file_numbers)}.proto",
        package=PACKAGE,
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    kind = file.enum_type.add(name="Kind")
    kind.value.add(name="KIND_UNSPECIFIED", number=0)
    kind.value.add(name="KIND_BIG", number=1)

    request = file.message_type.add(name="Req")
    _add(request, "id", 1, _Field.TYPE_STRING)
    _add(request, "num", 2, _Field.TYPE_INT64)
    _add(request, "inner", 3, _Field.TYPE_MESSAGE, type_name="Inner")
    _add(request, "tags", 4, _Field.TYPE_STRING, repeated=True)
    entry = request.nested_type.add(name="LabelsEntry")
    entry.options.map_entry = True
    _add(entry, "key", 1, _Field.TYPE_STRING)
    _add(entry, "value", 2, _Field.TYPE_STRING)
    _add(request, "labels", 5, _Field.TYPE_MESSAGE, type_name="Req.LabelsEntry", repeated=True)
    _add(request, "blob", 6, _Field.TYPE_BYTES)
    _add(request, "kind", 7, _Field.TYPE_ENUM, type_name="Kind")
    _add(request, "inners", 8, _Field.TYPE_MESSAGE, type_name="Inner", repeated=True)
    for number, name in enumerate(_EXTRA_STRINGS, start=9):
        _add(request, name, number, _Field.TYPE_STRING)

    inner = file.message_type.add(name="Inner")
    _add(inner, "name", 1, _Field.TYPE_STRING)
    _add(inner, "child", 2, _Field.TYPE_MESSAGE, type_name="Inner")
    _add(inner, "names", 3, _Field.TYPE_STRING, repeated=True)

    response = file.message_type.add(name="Resp")
    _add(response, "text", 1, _Field.TYPE_STRING)
    _add(response, "items", 2, _Field.TYPE_STRING, repeated=True)

    service = file.service.add(name="TestService")
    for rpc in rpcs:
        method = service.method.add(
            name=rpc.name,
            input_type=f".{PACKAGE}.{rpc.request}",
            output_type=f".{PACKAGE}.{rpc.response}",
            client_streaming=rpc.client_streaming,
            server_streaming=rpc.server_streaming,
        )
        if rpc.http is not None:
            method.options.Extensions[annotations_pb2.http].CopyFrom(rpc.http)
    pool.Add(file)
    return pool.FindServiceByName(SERVICE)


def _add(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    field_type: Any,
    *,
    type_name: str = "",
    repeated: bool = False,
) -> None:
    field = message.field.add(
        name=name,
        number=number,
        type=field_type,
        label=_Field.LABEL_REPEATED if repeated else _Field.LABEL_OPTIONAL,
    )
    if type_name:
        field.type_name = f".{PACKAGE}.{type_name}"
