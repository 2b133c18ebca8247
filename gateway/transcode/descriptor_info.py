"""Facts about descriptors that both the renderer and the request mapper need."""

from __future__ import annotations

import functools
import math

from execgate.api.v1 import rest_field_pb2
from google.api import field_behavior_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

# A JSON value carried as compact text (see protos/execgate/type/v1/raw_json.proto).
RAW_JSON = "execgate.type.v1.RawJson"
# A JSON array carried as one compact text (spliced whole; unlike a repeated field,
# it can be unset).
RAW_JSON_LIST = "execgate.type.v1.RawJsonList"

TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"
STRUCT = "google.protobuf.Struct"
VALUE = "google.protobuf.Value"
LIST_VALUE = "google.protobuf.ListValue"
FIELD_MASK = "google.protobuf.FieldMask"
EMPTY = "google.protobuf.Empty"
ANY = "google.protobuf.Any"
# Wrapper type -> the scalar type of its `value` field.
WRAPPERS: dict[str, int] = {
    "google.protobuf.DoubleValue": FieldDescriptor.TYPE_DOUBLE,
    "google.protobuf.FloatValue": FieldDescriptor.TYPE_FLOAT,
    "google.protobuf.Int64Value": FieldDescriptor.TYPE_INT64,
    "google.protobuf.UInt64Value": FieldDescriptor.TYPE_UINT64,
    "google.protobuf.Int32Value": FieldDescriptor.TYPE_INT32,
    "google.protobuf.UInt32Value": FieldDescriptor.TYPE_UINT32,
    "google.protobuf.BoolValue": FieldDescriptor.TYPE_BOOL,
    "google.protobuf.StringValue": FieldDescriptor.TYPE_STRING,
    "google.protobuf.BytesValue": FieldDescriptor.TYPE_BYTES,
}
# Messages whose JSON form is not an object of their fields.
SPECIAL_JSON_TYPES = frozenset(
    {
        RAW_JSON,
        RAW_JSON_LIST,
        TIMESTAMP,
        DURATION,
        STRUCT,
        VALUE,
        LIST_VALUE,
        FIELD_MASK,
        EMPTY,
        ANY,
        *WRAPPERS,
    }
)

INT32_TYPES = frozenset(
    {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32}
)
INT64_TYPES = frozenset(
    {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}
)
UINT32_TYPES = frozenset({FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32})
UINT64_TYPES = frozenset({FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64})
INTEGER_RANGES: dict[int, tuple[int, int]] = {
    **{t: (-(2**31), 2**31 - 1) for t in INT32_TYPES},
    **{t: (-(2**63), 2**63 - 1) for t in INT64_TYPES},
    **{t: (0, 2**32 - 1) for t in UINT32_TYPES},
    **{t: (0, 2**64 - 1) for t in UINT64_TYPES},
}


def field_behaviors(field: FieldDescriptor) -> frozenset[int]:
    """The `google.api.field_behavior` values set on a field."""
    return frozenset(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def rest_field(field: FieldDescriptor) -> rest_field_pb2.RestField | None:
    """The field's `(execgate.api.v1.rest_field)` option (bounds, query aliases, page
    number), or None when it has none."""
    options = field.GetOptions()
    if not options.HasExtension(rest_field_pb2.rest_field):
        return None
    return options.Extensions[rest_field_pb2.rest_field]


def integer_bounds(field: FieldDescriptor) -> tuple[int, int]:
    """Inclusive bounds of an integer field: its type's, narrowed by `rest_field`."""
    low, high = INTEGER_RANGES[field.type]
    rules = rest_field(field)
    if rules is not None:
        if rules.HasField("minimum"):
            low = max(low, rules.minimum)
        if rules.HasField("maximum"):
            high = min(high, rules.maximum)
    return low, high


def number_bounds(field: FieldDescriptor) -> tuple[float, float]:
    """Inclusive `rest_field` bounds of a floating field (infinite when unset)."""
    rules = rest_field(field)
    low, high = -math.inf, math.inf
    if rules is not None:
        if rules.HasField("minimum"):
            low = rules.minimum
        if rules.HasField("maximum"):
            high = rules.maximum
    return low, high


def is_non_empty_default(field: FieldDescriptor) -> bool:
    """A message field that renders its default instead of null when unset."""
    return field_behavior_pb2.NON_EMPTY_DEFAULT in field_behaviors(field)


def message_type(field: FieldDescriptor) -> Descriptor:
    """The message type of a message field (ValueError for any other field)."""
    if field.message_type is None:
        raise ValueError(f"{field.full_name} is not a message field")
    return field.message_type


def message_type_name(field: FieldDescriptor) -> str | None:
    """Full name of a message field's type; None for scalar and enum fields."""
    return field.message_type.full_name if field.message_type is not None else None


def enum_type(field: FieldDescriptor) -> EnumDescriptor:
    if field.enum_type is None:
        raise ValueError(f"{field.full_name} is not an enum field")
    return field.enum_type


def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def is_required_input(field: FieldDescriptor) -> bool:
    """REQUIRED and not OUTPUT_ONLY: a request must supply it."""
    behaviors = field_behaviors(field)
    return (
        field_behavior_pb2.REQUIRED in behaviors and field_behavior_pb2.OUTPUT_ONLY not in behaviors
    )


@functools.cache
def _proto3_optional_fields(descriptor: Descriptor) -> frozenset[str]:
    proto = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(proto)
    return frozenset(f.name for f in proto.field if f.proto3_optional)


def is_real_oneof_member(field: FieldDescriptor) -> bool:
    """Member of a written `oneof` (not the synthetic one of a proto3 `optional`)."""
    return field.containing_oneof is not None and field.name not in _proto3_optional_fields(
        field.containing_type
    )


def is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.is_repeated
        and message_type(field).GetOptions().map_entry
    )


def map_order_of(field: FieldDescriptor) -> FieldDescriptor | None:
    """The `repeated string <map>_order` field beside map `field` that orders its keys."""
    parent = field.containing_type
    order = parent.fields_by_name.get(field.name + "_order") if parent else None
    if order is None or not order.is_repeated or order.type != FieldDescriptor.TYPE_STRING:
        return None
    return order


def is_map_order(field: FieldDescriptor) -> bool:
    """Whether `field` only orders a map beside it: REST renders the map in that order and
    leaves the field itself out (of bodies and of the OpenAPI document)."""
    parent = field.containing_type
    if parent is None or not field.name.endswith("_order"):
        return False
    ordered = parent.fields_by_name.get(field.name.removesuffix("_order"))
    return ordered is not None and is_map(ordered) and map_order_of(ordered) is field


def map_key_value(field: FieldDescriptor) -> tuple[FieldDescriptor, FieldDescriptor]:
    entry = message_type(field)
    return entry.fields_by_name["key"], entry.fields_by_name["value"]


def _strip_enum_prefix(enum_name: str, value_name: str) -> str:
    """`ExecutionStatus`, `EXECUTION_STATUS_COMPLETED` -> `COMPLETED`.

    Compares case-insensitively and ignores underscores, like protobuf's own prefix
    remover, so acronyms (`HTTPMethod` / `HTTP_METHOD_GET`) work too. Keeps the full
    name when it does not carry the prefix or stripping would leave nothing usable.
    """
    prefix = enum_name.lower()
    i = 0
    j = 0
    while i < len(prefix) and j < len(value_name):
        if value_name[j] == "_":
            j += 1
            continue
        if value_name[j].lower() != prefix[i]:
            return value_name
        i += 1
        j += 1
    if i < len(prefix):
        return value_name
    rest = value_name[j:].lstrip("_")
    if not rest or rest[0].isdigit():
        return value_name
    return rest


def enum_rest_names(enum: EnumDescriptor) -> dict[int, str]:
    """Number -> REST name (prefix-stripped, lower-case); aliases: the first declared wins."""
    names: dict[int, str] = {}
    for value in enum.values:
        names.setdefault(value.number, _strip_enum_prefix(enum.name, value.name).lower())
    return names


def has_unspecified_zero(enum: EnumDescriptor) -> bool:
    """Whether the zero value is `…_UNSPECIFIED` (AIP-126): "not set", not a REST value.

    Such a value is left out of the OpenAPI enum and refused in requests; the renderer
    writes it as `null`, or raises RenderError for a REQUIRED field (a backend bug).
    """
    zero = enum.values_by_number.get(0)
    return zero is not None and zero.name.endswith("_UNSPECIFIED")


def enum_rest_values(enum: EnumDescriptor) -> dict[int, str]:
    """Number -> REST name of every value a REST body may hold (no UNSPECIFIED zero)."""
    names = enum_rest_names(enum)
    if has_unspecified_zero(enum):
        del names[0]
    return names


def enum_accepted_names(enum: EnumDescriptor) -> dict[str, int]:
    """Every accepted spelling -> number: the REST name and the full proto name of each value
    (but of no UNSPECIFIED zero)."""
    accepted: dict[str, int] = {}
    for value in enum.values:
        if value.number == 0 and has_unspecified_zero(enum):
            continue
        accepted.setdefault(_strip_enum_prefix(enum.name, value.name).lower(), value.number)
        accepted.setdefault(value.name, value.number)
    return accepted
