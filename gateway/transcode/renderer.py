"""JSON rendering of protobuf messages, specialised per message type at start-up.

`compile_response_renderer(descriptor)` generates (once, with `exec`) one small Python
function per message type reachable from `descriptor`; each builds a dict literal with
every field under its proto name, and the result goes through one `orjson.dumps`.
`RawJson` values are spliced as `orjson.Fragment`s, so documents are never parsed.

Rules (docs: the "REST rendering rules" of the design brief, CONTRACT.md):
- proto field names; every field present; fields without presence render their default;
  fields with presence (messages, proto3 `optional`, oneof members) render `null` when
  unset, except fields marked `(google.api.field_behavior) = NON_EMPTY_DEFAULT`,
  which render their default (a `RawJson` -> `{}`, a scalar -> its zero value). A
  `deprecated` field is omitted while empty (repeated, map) or unset (with presence): the
  legacy `results` alias.
- integers (int64/uint64 too) are JSON numbers; doubles are numbers, NaN and infinities
  are the strings "NaN", "Infinity", "-Infinity" (as protojson); a `float` renders as the
  shortest decimal that round-trips through 32 bits (0.1f -> 0.1); bytes are standard
  base64 with padding.
- enums: the value name with the enum's type-name prefix stripped, lower-cased
  (`EXECUTION_STATUS_COMPLETED` -> "completed"); a number with no name renders as the number.
  A zero `…_UNSPECIFIED` value has no REST name: it renders as `null`, and in a field
  marked REQUIRED raises RenderError (the backend left out a value the API promises).
- maps: JSON objects with keys sorted (deterministic bodies); int keys as decimal strings,
  bool keys as "true"/"false". A map `x` whose message also has a `repeated string
  x_order` field renders in that order instead (keys it lacks follow, sorted), and
  `x_order` itself is not rendered: a proto map has no order, and
  `stage_statistics.stages` must read in pipeline order.
- well-known types: Timestamp -> RFC 3339 UTC "Z" with 0/3/6/9 fractional digits
  (`wkt_time`); Duration -> "1.5s"; Struct/Value/ListValue -> the JSON they hold (an unset
  Value -> null); wrappers -> the wrapped value; FieldMask -> comma-joined paths as stored
  (snake_case); Empty -> {}; Any -> {"@type": url, ...fields} ({"@type", "value"} for a
  special type, and {"@type", "value": base64} when the type is not in the default pool).
- a `RawJson` with empty text renders as `null` (`{}` where NON_EMPTY_DEFAULT); a
  `RawJsonList` is spliced the same way (its text is a JSON array; empty text renders as
  `null`, `[]` where NON_EMPTY_DEFAULT).
"""

from __future__ import annotations

import binascii
import keyword
import math
import struct
from collections.abc import Callable
from typing import Any as AnyType

import orjson
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from gateway.transcode import descriptor_info as info
from gateway.transcode.exceptions import RenderError
from gateway.transcode.wkt_time import format_duration, format_timestamp

MessageRenderer = Callable[[Message], bytes]
# Returns an object orjson can serialise (dict, list, str, number, None, Fragment).
MessageConverter = Callable[[Message], object]

_F = FieldDescriptor
_PASS_THROUGH = frozenset(
    {_F.TYPE_BOOL, _F.TYPE_STRING}
    | info.INT32_TYPES
    | info.INT64_TYPES
    | info.UINT32_TYPES
    | info.UINT64_TYPES
)
_PACK_FLOAT32 = struct.Struct("<f").pack


def _nonfinite(value: float) -> str:
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _double(value: float) -> float | str:
    return value if math.isfinite(value) else _nonfinite(value)


def _float32(value: float) -> float | str:
    """The shortest decimal that is the same 32-bit float (upb hands us its double value)."""
    if not math.isfinite(value):
        return _nonfinite(value)
    packed = _PACK_FLOAT32(value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        try:
            if _PACK_FLOAT32(candidate) == packed:
                return candidate
        except OverflowError:  # rounded up past the largest 32-bit float
            continue
    return value


def _unnamed_enum(number: int, unspecified_zero: bool, required: bool) -> int | None:
    if number == 0 and unspecified_zero:
        if required:
            raise RenderError("a REQUIRED enum field holds its UNSPECIFIED value")
        return None
    return number


def _base64(value: bytes) -> str:
    return binascii.b2a_base64(value, newline=False).decode("ascii")


def _timestamp(message: AnyType) -> str:
    try:
        return format_timestamp(message.seconds, message.nanos)
    except ValueError as error:
        raise RenderError(str(error)) from None


def _duration(message: AnyType) -> str:
    try:
        return format_duration(message.seconds, message.nanos)
    except ValueError as error:
        raise RenderError(str(error)) from None


def _value(message: AnyType) -> object:
    kind = message.WhichOneof("kind")
    if kind == "string_value":
        return message.string_value
    if kind == "number_value":
        return _double(message.number_value)
    if kind == "bool_value":
        return message.bool_value
    if kind == "struct_value":
        return _struct(message.struct_value)
    if kind == "list_value":
        return _list_value(message.list_value)
    return None  # null_value, or no kind set


def _struct(message: AnyType) -> dict[str, object]:
    return {key: _value(value) for key, value in sorted(message.fields.items())}


def _list_value(message: AnyType) -> list[object]:
    return [_value(value) for value in message.values]


def _field_mask(message: AnyType) -> str:
    return ",".join(message.paths)


def _empty(message: AnyType) -> dict[str, object]:
    return {}


def _raw_json(message: AnyType) -> orjson.Fragment:
    # RawJson and RawJsonList alike: the text is spliced in O(1), whatever its length.
    return orjson.Fragment(message.json or "null")


_SCALAR_CONVERTERS: dict[int, str] = {
    _F.TYPE_DOUBLE: "_double",
    _F.TYPE_FLOAT: "_float32",
    _F.TYPE_BYTES: "_base64",
}

_SPECIAL_FUNCTIONS: dict[str, str] = {
    info.RAW_JSON: "_raw_json",
    info.RAW_JSON_LIST: "_raw_json",
    info.TIMESTAMP: "_timestamp",
    info.DURATION: "_duration",
    info.STRUCT: "_struct",
    info.VALUE: "_value",
    info.LIST_VALUE: "_list_value",
    info.FIELD_MASK: "_field_mask",
    info.EMPTY: "_empty",
    info.ANY: "_any",
}


def _ordered_items(entries: AnyType, order: AnyType) -> list[tuple[AnyType, AnyType]]:
    """A map's entries in the order `order` lists their keys; keys it lacks follow, sorted."""
    listed = [(k, entries[k]) for k in dict.fromkeys(order) if k in entries]
    if len(listed) == len(entries):
        return listed
    named = {k for k, _ in listed}
    return listed + sorted((k, v) for k, v in entries.items() if k not in named)


def _access(var: str, name: str) -> str:
    """Python expression reading field `name` of `var` (fields may be named like keywords)."""
    return f"getattr({var}, {name!r})" if keyword.iskeyword(name) else f"{var}.{name}"


class _Compiler:
    """Generates and caches one converter function per message type, in one namespace."""

    def __init__(self) -> None:
        self._names: dict[Descriptor, str] = {}
        self._namespace: dict[str, object] = {
            "_Fragment": orjson.Fragment,
            "_unnamed_enum": _unnamed_enum,
            "_ordered_items": _ordered_items,
            "_double": _double,
            "_float32": _float32,
            "_base64": _base64,
            "_raw_json": _raw_json,
            "_timestamp": _timestamp,
            "_duration": _duration,
            "_struct": _struct,
            "_value": _value,
            "_list_value": _list_value,
            "_field_mask": _field_mask,
            "_empty": _empty,
            "_any": self._any,
        }
        self._counter = 0

    def converter(self, descriptor: Descriptor) -> MessageConverter:
        function = self._namespace[self._function_name(descriptor)]
        assert callable(function)
        return function

    def field_converter(self, descriptor: Descriptor, field_name: str) -> MessageConverter:
        """A converter returning the JSON value of one top-level field (`response_body`)."""
        field = descriptor.fields_by_name.get(field_name)
        if field is None:
            raise ValueError(
                f"response_body {field_name!r} is not a field of {descriptor.full_name}"
            )
        name = self._fresh_name()
        source = f"def {name}(m):\n    return {self._field_expression(field)}\n"
        self._exec(source, f"{descriptor.full_name}.{field_name}")
        function = self._namespace[name]
        assert callable(function)
        return function

    def _fresh_name(self) -> str:
        self._counter += 1
        return f"_c{self._counter}"

    def _exec(self, source: str, label: str) -> None:
        exec(compile(source, f"<render {label}>", "exec"), self._namespace)  # noqa: S102

    def _constant(self, value: object) -> str:
        """Puts a per-type constant (an enum name table) in the namespace; returns its name."""
        name = self._fresh_name()
        self._namespace[name] = value
        return name

    def _function_name(self, descriptor: Descriptor) -> str:
        special = _SPECIAL_FUNCTIONS.get(descriptor.full_name)
        if special is not None:
            return special
        if descriptor.full_name in info.WRAPPERS:
            return self._wrapper_function(descriptor)
        name = self._names.get(descriptor)
        if name is None:
            name = self._fresh_name()
            self._names[descriptor] = name  # before the fields: recursive types refer to it
            try:
                self._exec(self._message_source(name, descriptor), descriptor.full_name)
            except Exception:
                del self._names[descriptor]  # never leave a name without its function
                raise
        return name

    def _wrapper_function(self, descriptor: Descriptor) -> str:
        name = self._names.get(descriptor)
        if name is None:
            name = self._fresh_name()
            self._names[descriptor] = name
            value = self._scalar_expression(descriptor.fields_by_name["value"], "m.value")
            self._exec(f"def {name}(m):\n    return {value}\n", descriptor.full_name)
        return name

    def _message_source(self, name: str, descriptor: Descriptor) -> str:
        lines = [f"def {name}(m):", "    d = {"]
        omit_when_empty = []
        for field in descriptor.fields:
            if info.is_map_order(field):
                continue  # rendered as the order of its map's keys
            lines.append(f"        {field.name!r}: {self._field_expression(field)},")
            if field.GetOptions().deprecated and (field.is_repeated or field.has_presence):
                omit_when_empty.append(field)
        lines.append("    }")
        for field in omit_when_empty:
            if field.is_repeated:
                lines.append(f"    if not len({_access('m', field.name)}):")
            else:
                lines.append(f"    if not m.HasField({field.name!r}):")
            lines.append(f"        del d[{field.name!r}]")
        lines.append("    return d")
        return "\n".join(lines) + "\n"

    def _field_expression(self, field: FieldDescriptor) -> str:
        access = _access("m", field.name)
        if info.is_map(field):
            key_field, value_field = info.map_key_value(field)
            if key_field.type == _F.TYPE_STRING:
                key = "k"
            elif key_field.type == _F.TYPE_BOOL:
                key = "('true' if k else 'false')"
            else:
                key = "str(k)"
            value = self._element_expression(value_field, "v")
            order = info.map_order_of(field)
            if order is not None:
                items = f"_ordered_items({access}, {_access('m', order.name)})"
            else:
                items = f"sorted({access}.items())"
            return f"{{{key}: {value} for k, v in {items}}}"
        if field.is_repeated:
            if info.message_type_name(field) == info.RAW_JSON:
                # One fragment for the whole array: cheaper than one per element.
                return f"_Fragment('[' + ','.join([x.json or 'null' for x in {access}]) + ']')"
            if field.type in _PASS_THROUGH:
                return f"list({access})"
            return f"[{self._element_expression(field, 'x')} for x in {access}]"
        if field.message_type is not None and info.is_non_empty_default(field):
            if info.message_type_name(field) == info.RAW_JSON:
                return f"_Fragment({access}.json or '{{}}')"
            if info.message_type_name(field) == info.RAW_JSON_LIST:
                return f"_Fragment({access}.json or '[]')"
            return self._element_expression(field, access)
        value = self._element_expression(field, access)
        # A NON_EMPTY_DEFAULT scalar is never null: unset renders its zero value.
        if field.has_presence and not info.is_non_empty_default(field):
            return f"({value} if m.HasField({field.name!r}) else None)"
        return value

    def _element_expression(self, field: FieldDescriptor, var: str) -> str:
        """Expression converting one value of `field` (not repeated) held in `var`."""
        if field.message_type is not None:
            if info.message_type_name(field) in (info.RAW_JSON, info.RAW_JSON_LIST):
                return f"_Fragment({var}.json or 'null')"
            return f"{self._function_name(info.message_type(field))}({var})"
        return self._scalar_expression(field, var)

    def _scalar_expression(self, field: FieldDescriptor, var: str) -> str:
        if field.type == _F.TYPE_ENUM:
            enum = info.enum_type(field)
            names = self._constant(info.enum_rest_values(enum))
            # REST names are never empty, so `or` only falls through for unnamed numbers.
            flags = f"{info.has_unspecified_zero(enum)}, {info.is_required_input(field)}"
            return f"({names}.get({var}) or _unnamed_enum({var}, {flags}))"
        converter = _SCALAR_CONVERTERS.get(field.type)
        if converter is not None:
            return f"{converter}({var})"
        if field.type not in _PASS_THROUGH:
            raise ValueError(f"unsupported field type {field.type} of {field.full_name}")
        return var

    def _any(self, message: AnyType) -> dict[str, object]:
        type_url: str = message.type_url
        type_name = type_url.rpartition("/")[2]
        try:
            descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
            inner = message_factory.GetMessageClass(descriptor).FromString(message.value)
        except (KeyError, DecodeError):
            return {"@type": type_url, "value": _base64(message.value)}
        value = self.converter(descriptor)(inner)
        if isinstance(value, dict) and descriptor.full_name not in info.SPECIAL_JSON_TYPES:
            return {"@type": type_url, **value}
        return {"@type": type_url, "value": value}


_COMPILER = _Compiler()


def compile_message_converter(descriptor: Descriptor) -> MessageConverter:
    """Message -> JSON-ready object (for composing bodies, e.g. streamed events)."""
    return _COMPILER.converter(descriptor)


def compile_response_renderer(descriptor: Descriptor, response_body: str = "") -> MessageRenderer:
    """Message -> JSON bytes; with `response_body` (a top-level field name) only that field.

    Call at start-up: it generates the functions for every reachable message type, and
    raises ValueError naming the field when `response_body` is not a field.
    """
    if response_body:
        convert = _COMPILER.field_converter(descriptor, response_body)
    else:
        convert = _COMPILER.converter(descriptor)
    dumps = orjson.dumps

    def render(message: Message) -> bytes:
        return dumps(convert(message))

    return render
