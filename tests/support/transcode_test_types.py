"""A message type with every kind of field, built from a FileDescriptorProto at import.

The execgate protos do not use every protobuf feature (maps with int keys, oneofs,
float32, bytes, wrappers, ...); the transcoder must handle them all, so the tests get
this descriptor, added to the default pool (so that `Any` can resolve it).
"""

from __future__ import annotations

from typing import Any

from execgate.type.v1 import raw_json_pb2
from google.api import field_behavior_pb2  # type: ignore[import-untyped]
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)

PACKAGE = "execgate.transcodetest"
_FILE = "execgate/transcodetest/all_types.proto"

_T = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "d": _T.TYPE_DOUBLE,
    "f": _T.TYPE_FLOAT,
    "i32": _T.TYPE_INT32,
    "i64": _T.TYPE_INT64,
    "u32": _T.TYPE_UINT32,
    "u64": _T.TYPE_UINT64,
    "s32": _T.TYPE_SINT32,
    "s64": _T.TYPE_SINT64,
    "fx32": _T.TYPE_FIXED32,
    "fx64": _T.TYPE_FIXED64,
    "sfx32": _T.TYPE_SFIXED32,
    "sfx64": _T.TYPE_SFIXED64,
    "b": _T.TYPE_BOOL,
    "s": _T.TYPE_STRING,
    "by": _T.TYPE_BYTES,
}
_WKT = {
    "ts": ".google.protobuf.Timestamp",
    "dur": ".google.protobuf.Duration",
    "st": ".google.protobuf.Struct",
    "val": ".google.protobuf.Value",
    "lv": ".google.protobuf.ListValue",
    "w_i64": ".google.protobuf.Int64Value",
    "w_u32": ".google.protobuf.UInt32Value",
    "w_b": ".google.protobuf.BoolValue",
    "w_s": ".google.protobuf.StringValue",
    "w_by": ".google.protobuf.BytesValue",
    "w_d": ".google.protobuf.DoubleValue",
    "w_f": ".google.protobuf.FloatValue",
    "fm": ".google.protobuf.FieldMask",
    "empty": ".google.protobuf.Empty",
    "any": ".google.protobuf.Any",
    "raw": ".execgate.type.v1.RawJson",
}


def _field(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    field_type: int,
    type_name: str = "",
    repeated: bool = False,
    behaviors: tuple[int, ...] = (),
    **options: bool,
) -> descriptor_pb2.FieldDescriptorProto:
    field = message.field.add(
        name=name,
        number=len(message.field) + 1,
        type=field_type,
        label=_T.LABEL_REPEATED if repeated else _T.LABEL_OPTIONAL,
    )
    if type_name:
        field.type_name = type_name
    for behavior in behaviors:
        field.options.Extensions[field_behavior_pb2.field_behavior].append(behavior)
    for option, value in options.items():
        setattr(field.options, option, value)
    return field


def _map(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    key_type: int,
    value_type: int,
    value_type_name: str = "",
) -> None:
    entry_name = "".join(part.title() for part in name.split("_")) + "Entry"
    entry = message.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=key_type, label=_T.LABEL_OPTIONAL)
    value = entry.field.add(name="value", number=2, type=value_type, label=_T.LABEL_OPTIONAL)
    if value_type_name:
        value.type_name = value_type_name
    _field(message, name, _T.TYPE_MESSAGE, f".{PACKAGE}.AllTypes.{entry_name}", repeated=True)


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name=_FILE,
        package=PACKAGE,
        syntax="proto3",
        dependency=[
            "google/api/field_behavior.proto",
            "google/protobuf/timestamp.proto",
            "google/protobuf/duration.proto",
            "google/protobuf/struct.proto",
            "google/protobuf/wrappers.proto",
            "google/protobuf/field_mask.proto",
            "google/protobuf/empty.proto",
            "google/protobuf/any.proto",
            "execgate/type/v1/raw_json.proto",
        ],
    )
    color = file.enum_type.add(name="Color")
    for number, name in enumerate(("COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_DARK_BLUE")):
        color.value.add(name=name, number=number)
    plain = file.enum_type.add(name="Plain")  # values without the type-name prefix
    plain.value.add(name="ZERO", number=0)
    plain.value.add(name="ONE", number=1)

    inner = file.message_type.add(name="Inner")
    _field(inner, "n", _T.TYPE_INT32)
    _field(inner, "child", _T.TYPE_MESSAGE, f".{PACKAGE}.Inner")  # recursive

    required = file.message_type.add(name="WithRequired")
    _field(required, "name", _T.TYPE_STRING, behaviors=(field_behavior_pb2.REQUIRED,))
    _field(
        required,
        "score",
        _T.TYPE_DOUBLE,
        behaviors=(field_behavior_pb2.REQUIRED, field_behavior_pb2.OUTPUT_ONLY),
    )
    _field(required, "note", _T.TYPE_STRING)

    message = file.message_type.add(name="AllTypes")
    message.oneof_decl.add(name="choice")  # real oneofs come before synthetic ones
    for name, field_type in _SCALARS.items():
        _field(message, name, field_type)
    _field(message, "color", _T.TYPE_ENUM, f".{PACKAGE}.Color")
    _field(message, "plain", _T.TYPE_ENUM, f".{PACKAGE}.Plain")
    for name in ("opt_i32", "opt_s"):
        field = _field(message, name, _T.TYPE_INT32 if name == "opt_i32" else _T.TYPE_STRING)
        field.proto3_optional = True
        field.oneof_index = len(message.oneof_decl)
        message.oneof_decl.add(name=f"_{name}")
    _field(message, "inner", _T.TYPE_MESSAGE, f".{PACKAGE}.Inner")
    _field(
        message,
        "inner_default",
        _T.TYPE_MESSAGE,
        f".{PACKAGE}.Inner",
        behaviors=(field_behavior_pb2.NON_EMPTY_DEFAULT,),
    )
    _field(message, "r_i64", _T.TYPE_INT64, repeated=True)
    _field(message, "r_d", _T.TYPE_DOUBLE, repeated=True)
    _field(message, "r_color", _T.TYPE_ENUM, f".{PACKAGE}.Color", repeated=True)
    _field(message, "r_by", _T.TYPE_BYTES, repeated=True)
    _field(message, "r_inner", _T.TYPE_MESSAGE, f".{PACKAGE}.Inner", repeated=True)
    _field(message, "r_s", _T.TYPE_STRING, repeated=True)
    _map(message, "m_s", _T.TYPE_STRING, _T.TYPE_INT32)
    _map(message, "m_i", _T.TYPE_INT64, _T.TYPE_STRING)
    _map(message, "m_b", _T.TYPE_BOOL, _T.TYPE_MESSAGE, f".{PACKAGE}.Inner")
    _map(message, "m_u", _T.TYPE_UINT32, _T.TYPE_ENUM, f".{PACKAGE}.Color")
    _map(message, "m_raw", _T.TYPE_STRING, _T.TYPE_MESSAGE, ".execgate.type.v1.RawJson")
    choice = 0
    for name, field_type, type_name in (
        ("c_s", _T.TYPE_STRING, ""),
        ("c_inner", _T.TYPE_MESSAGE, f".{PACKAGE}.Inner"),
        ("c_i", _T.TYPE_INT32, ""),
    ):
        _field(message, name, field_type, type_name).oneof_index = choice
    _field(message, "old", _T.TYPE_STRING, repeated=True, deprecated=True)
    for name, type_name in _WKT.items():
        _field(message, name, _T.TYPE_MESSAGE, type_name)
    _field(
        message,
        "raw_default",
        _T.TYPE_MESSAGE,
        ".execgate.type.v1.RawJson",
        behaviors=(field_behavior_pb2.NON_EMPTY_DEFAULT,),
    )
    _field(message, "r_raw", _T.TYPE_MESSAGE, ".execgate.type.v1.RawJson", repeated=True)
    _field(message, "r_ts", _T.TYPE_MESSAGE, ".google.protobuf.Timestamp", repeated=True)
    _field(message, "class", _T.TYPE_INT32)  # a Python keyword
    _field(message, "camel_case_name", _T.TYPE_STRING)
    _field(message, "required", _T.TYPE_MESSAGE, f".{PACKAGE}.WithRequired")
    return file


def _load() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.Default()
    # Imported for their side effect: the dependencies must be in the pool first.
    _ = (any_pb2, duration_pb2, empty_pb2, field_mask_pb2, struct_pb2, timestamp_pb2)
    _ = (wrappers_pb2, raw_json_pb2)
    try:
        pool.FindFileByName(_FILE)
    except KeyError:
        pool.AddSerializedFile(_build_file().SerializeToString())
    return pool


_POOL = _load()
ALL_TYPES = _POOL.FindMessageTypeByName(f"{PACKAGE}.AllTypes")
INNER = _POOL.FindMessageTypeByName(f"{PACKAGE}.Inner")
WITH_REQUIRED = _POOL.FindMessageTypeByName(f"{PACKAGE}.WithRequired")


# Typed `Any`: the classes are built at run time, so mypy cannot know their fields.
def new_all_types() -> Any:
    return message_factory.GetMessageClass(ALL_TYPES)()


def new_inner(n: int = 0) -> Any:
    inner: Any = message_factory.GetMessageClass(INNER)()
    inner.n = n
    return inner
