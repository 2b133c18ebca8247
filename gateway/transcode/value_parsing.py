"""Typed parsing of single field values, from URL text (path, query) and from JSON (body).

Each parser returns the Python value protobuf accepts for the field, or raises `Invalid`
with a pydantic-style error type and message. Accepted spellings:
- bool: `true`/`false` and `1`/`0` (any case) in URLs; JSON `true`/`false` in bodies.
- integers: decimal digits with an optional sign (JSON: integral numbers, or such strings),
  range-checked for the field's type and its `(execgate.api.v1.rest_field)` minimum and
  maximum.
- floats: decimal numbers and "NaN", "Infinity", "-Infinity" (JSON: numbers or such strings);
  `float` fields are range-checked for 32 bits.
- enums: the REST name (`completed`), the proto name (`EXECUTION_STATUS_COMPLETED`) or the
  number of a declared value.
- bytes: standard or URL-safe base64, padding optional.
- Timestamp: RFC 3339 with an offset; Duration: `"1.5s"`; wrappers: the wrapped value;
  FieldMask (URL only): comma-separated paths.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway.transcode import descriptor_info as info
from gateway.transcode.wkt_time import parse_duration, parse_timestamp

_F = FieldDescriptor
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_FLOAT32_MAX = 3.4028234663852886e38
_TEXT_BOOLS = {"true": True, "false": False, "1": True, "0": False}

ParsedValue = object
TextParser = Callable[[str], ParsedValue]
JsonParser = Callable[[object], ParsedValue]


class ValueParseError(Exception):
    """A value that does not parse: pydantic-style `type` and a message for the client."""

    def __init__(self, error_type: str, msg: str) -> None:
        super().__init__(msg)
        self.type = error_type
        self.msg = msg


def _check_range(value: int, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if value < low:
        raise ValueParseError(
            "greater_than_equal", f"Input should be greater than or equal to {low}"
        )
    if value > high:
        raise ValueParseError("less_than_equal", f"Input should be less than or equal to {high}")
    return value


def _integer_from_text(text: str, bounds: tuple[int, int]) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueParseError(
            "int_parsing", "Input should be a valid integer, unable to parse string"
        )
    return _check_range(int(text), bounds)


def _integer_from_json(value: object, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool):
        raise ValueParseError("int_type", "Input should be a valid integer")
    if isinstance(value, int):
        return _check_range(value, bounds)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueParseError(
                "int_from_float", "Input should be a valid integer, got a number with a fraction"
            )
        return _check_range(int(value), bounds)
    if isinstance(value, str):
        return _integer_from_text(value, bounds)
    raise ValueParseError("int_type", "Input should be a valid integer")


def _float_from_text(text: str, field_type: int) -> float:
    special = _SPECIAL_FLOATS.get(text)
    if special is not None:
        return special
    if not _NUMBER.fullmatch(text):
        raise ValueParseError(
            "float_parsing", "Input should be a valid number, unable to parse string"
        )
    return _check_float(float(text), field_type)


def _check_float(value: float, field_type: int) -> float:
    limit = _FLOAT32_MAX if field_type == _F.TYPE_FLOAT else math.inf
    if math.isfinite(value) and abs(value) > limit:
        raise ValueParseError(
            "finite_number", "Input should be a finite number within the field's range"
        )
    return value


def _float_from_json(value: object, field_type: int) -> float:
    if isinstance(value, bool):
        raise ValueParseError("float_type", "Input should be a valid number")
    if isinstance(value, int | float):
        return _check_float(float(value), field_type)
    if isinstance(value, str):
        return _float_from_text(value, field_type)
    raise ValueParseError("float_type", "Input should be a valid number")


def _bool_from_text(text: str) -> bool:
    parsed = _TEXT_BOOLS.get(text.lower())
    if parsed is None:
        raise ValueParseError(
            "bool_parsing", "Input should be a valid boolean, unable to interpret input"
        )
    return parsed


def _bool_from_json(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueParseError("bool_type", "Input should be a valid boolean")
    return value


def integer_text_parser(low: int, high: int) -> TextParser:
    """A parser of decimal integer text within [low, high] (a query-only number such as a
    page number, which is no field of its own)."""
    return lambda text: _integer_from_text(text, (low, high))


def _string_from_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueParseError(
            "string_unicode", "Input should be a valid string, not valid UTF-8"
        ) from None
    return text


def _string_from_json(value: object) -> str:
    if not isinstance(value, str):
        raise ValueParseError("string_type", "Input should be a valid string")
    return _string_from_text(value)


def _bytes_from_text(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise ValueParseError("bytes_invalid_encoding", "Input should be valid base64") from None


def _bytes_from_json(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueParseError("bytes_type", "Input should be a base64 string")
    return _bytes_from_text(value)


def _enum_parsers(field: FieldDescriptor) -> tuple[TextParser, JsonParser]:
    accepted = info.enum_accepted_names(info.enum_type(field))
    numbers = frozenset(accepted.values())
    names = list(dict.fromkeys(info.enum_rest_values(info.enum_type(field)).values()))
    quoted = [f"'{name}'" for name in names]
    expected = ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]

    def invalid() -> ValueParseError:
        return ValueParseError("enum", f"Input should be {expected}")

    def from_text(text: str) -> int:
        number = accepted.get(text)
        if number is not None:
            return number
        if _INTEGER.fullmatch(text) and int(text) in numbers:
            return int(text)
        raise invalid()

    def from_json(value: object) -> int:
        if isinstance(value, str):
            return from_text(value)
        if isinstance(value, int) and not isinstance(value, bool) and value in numbers:
            return value
        raise invalid()

    return from_text, from_json


def _timestamp_from_text(text: str) -> timestamp_pb2.Timestamp:
    try:
        seconds, nanos = parse_timestamp(text)
    except ValueError:
        raise ValueParseError(
            "datetime_parsing", "Input should be an RFC 3339 date-time such as 2026-01-31T12:00:00Z"
        ) from None
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _duration_from_text(text: str) -> duration_pb2.Duration:
    try:
        seconds, nanos = parse_duration(text)
    except ValueError:
        raise ValueParseError(
            "time_delta_parsing", "Input should be a duration in seconds such as '1.5s'"
        ) from None
    return duration_pb2.Duration(seconds=seconds, nanos=nanos)


def _string_only(parse: TextParser, error_type: str, msg: str) -> JsonParser:
    def from_json(value: object) -> ParsedValue:
        if not isinstance(value, str):
            raise ValueParseError(error_type, msg)
        return parse(value)

    return from_json


def scalar_parsers(field: FieldDescriptor) -> tuple[TextParser, JsonParser]:
    """(from URL text, from a JSON value) for a non-message field."""
    kind = field.type
    if kind == _F.TYPE_ENUM:
        return _enum_parsers(field)
    if kind == _F.TYPE_BOOL:
        return _bool_from_text, _bool_from_json
    if kind == _F.TYPE_STRING:
        return _string_from_text, _string_from_json
    if kind == _F.TYPE_BYTES:
        return _bytes_from_text, _bytes_from_json
    if kind in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        low, high = info.number_bounds(field)

        def bounded(value: float) -> float:
            # NaN compares false both ways: it passes, as it does without bounds.
            if value < low:
                raise ValueParseError(
                    "greater_than_equal", f"Input should be greater than or equal to {low:g}"
                )
            if value > high:
                raise ValueParseError(
                    "less_than_equal", f"Input should be less than or equal to {high:g}"
                )
            return value

        return (lambda text: bounded(_float_from_text(text, kind))), (
            lambda value: bounded(_float_from_json(value, kind))
        )
    if kind in info.INTEGER_RANGES:
        bounds = info.integer_bounds(field)
        return (lambda text: _integer_from_text(text, bounds)), (
            lambda value: _integer_from_json(value, bounds)
        )
    raise ValueError(f"field {field.full_name} has an unsupported type {kind}")


def _wrapper_parsers(field: FieldDescriptor) -> tuple[TextParser, JsonParser]:
    wrapper = info.message_type(field)
    message_class = info.message_class(wrapper)
    text_parse, json_parse = scalar_parsers(wrapper.fields_by_name["value"])

    def from_text(text: str) -> Message:
        return message_class(value=text_parse(text))

    def from_json(value: object) -> Message:
        return message_class(value=json_parse(value))

    return from_text, from_json


def _field_mask_from_text(text: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=[path for path in text.split(",") if path])


def message_value_parsers(field: FieldDescriptor) -> tuple[TextParser, JsonParser] | None:
    """Parsers for a message field written as one value (Timestamp, Duration, wrappers);
    None for messages written as JSON objects (or not at all in URLs)."""
    name = info.message_type_name(field)
    if name == info.TIMESTAMP:
        return _timestamp_from_text, _string_only(
            _timestamp_from_text, "datetime_type", "Input should be an RFC 3339 date-time string"
        )
    if name == info.DURATION:
        return _duration_from_text, _string_only(
            _duration_from_text, "time_delta_type", "Input should be a duration string"
        )
    if name in info.WRAPPERS:
        return _wrapper_parsers(field)
    if name == info.FIELD_MASK:
        return _field_mask_from_text, _string_only(
            _field_mask_from_text, "string_type", "Input should be a comma-separated string"
        )
    return None
