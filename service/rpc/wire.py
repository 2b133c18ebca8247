"""Protobuf wire format, just enough to build responses from stored bytes without parsing them.

A serialized message is a concatenation of fields, so an embedded message
field is its tag, its length as a varint, then the embedded message's bytes.
Responses made of stored `ExecutionDetail`/`ExecutionSummary` bytes are
assembled with `embedded` instead of being parsed and re-serialized.
"""

from __future__ import annotations

import struct

from google.protobuf.message import Message

_FIXED64 = 1
_LENGTH_DELIMITED = 2
_DOUBLE = struct.Struct("<d")


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def embedded(field_number: int, payload: bytes) -> bytes:
    """One length-delimited field (an embedded message, bytes or string)."""
    return varint(field_number << 3 | _LENGTH_DELIMITED) + varint(len(payload)) + payload


def double_field(field_number: int, value: float) -> bytes:
    """A double field. Appended to a message, it wins over an earlier value of that
    field: the last one parsed is the one kept."""
    return varint(field_number << 3 | _FIXED64) + _DOUBLE.pack(value)


def serialize_response(response: bytes | Message) -> bytes:
    """Response serializer for every handler: stored bytes pass through as they are."""
    if isinstance(response, bytes):
        return response
    return response.SerializeToString()


def true_bool(field_number: int) -> bytes:
    """A bool field set to true (false is the default and is not written)."""
    return varint(field_number << 3) + b"\x01"
