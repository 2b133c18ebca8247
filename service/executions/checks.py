"""Field checks shared by the write path: each raises `InvalidArgumentError` naming the field."""

from __future__ import annotations

import math
import re

import orjson
from execgate.type.v1 import raw_json_pb2

from service.errors import InvalidArgumentError

_MAX_JSON_ERROR = 120
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


# The deepest nesting a stored JSON value may have (the value itself is level 1).
# orjson, which writes every stored value and every response of the service and
# the gateway, refuses to write more than 254 levels (and to read more than 1024);
# half of that leaves room for a value rendered inside a response, or inside a
# client's own document, by an encoder with the same limit.
MAX_JSON_DEPTH = 128


def json_object(raw: raw_json_pb2.RawJson, field: str) -> raw_json_pb2.RawJson:
    """Parse `raw.json`, require a JSON object at most MAX_JSON_DEPTH levels deep, and
    return it re-serialised compactly.

    The gateway splices the text verbatim, so only text that orjson itself
    wrote may be stored. This is the one place a writer's JSON is checked.
    """
    try:
        value = orjson.loads(raw.json)
    except orjson.JSONDecodeError as error:
        reason = str(error)[:_MAX_JSON_ERROR]
        raise InvalidArgumentError(field, f"{field} is not valid JSON: {reason}") from None
    if not isinstance(value, dict):
        raise InvalidArgumentError(field, f"{field} must be a JSON object")
    # Cheap first: a text with few brackets cannot nest deeply (C-speed counts). A scalar
    # counts one level below its container, so n containers nest at most n + 1 deep.
    text = raw.json
    if text.count("{") + text.count("[") >= MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
        raise InvalidArgumentError(
            field, f"{field} is nested more than {MAX_JSON_DEPTH} levels deep"
        )
    return raw_json_pb2.RawJson(json=orjson.dumps(value).decode())


def json_depth(value: object) -> int:
    """Nesting depth of a parsed JSON value: 1 for a scalar or an empty container. Walks
    with an explicit stack: the value may be nested deeper than Python's recursion limit."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(current, dict):
            stack.extend((child, depth + 1) for child in current.values())
        elif isinstance(current, list):
            stack.extend((child, depth + 1) for child in current)
    return deepest


def non_negative_count(value: int, field: str) -> int:
    if value < 0:
        raise InvalidArgumentError(field, f"{field} must not be negative (got {value})")
    return value


def non_negative_number(value: float, field: str) -> float:
    # NaN and infinities have no JSON form; a negative duration or cost is impossible.
    if not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(field, f"{field} must be a finite number >= 0 (got {value})")
    return value


def text(value: str, field: str, *, max_length: int, required: bool = True) -> str:
    if required and not value:
        raise InvalidArgumentError(field, f"{field} is required")
    if len(value) > max_length:
        raise InvalidArgumentError(field, f"{field} must be at most {max_length} characters")
    if any(ord(char) < 0x20 and char not in "\t\n" for char in value):
        raise InvalidArgumentError(field, f"{field} must not contain control characters")
    return value


def printable_ascii(value: str, field: str, max_length: int) -> str:
    if not 1 <= len(value) <= max_length or not (value.isascii() and value.isprintable()):
        raise InvalidArgumentError(
            field, f"{field} must be 1 to {max_length} printable ASCII characters"
        )
    return value


def request_id(value: str, field: str = "request_id") -> str:
    if _REQUEST_ID.fullmatch(value) is None:
        raise InvalidArgumentError(field, f"{field} must be 1 to 128 characters of [A-Za-z0-9_.:-]")
    return value
