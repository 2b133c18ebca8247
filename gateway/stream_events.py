"""How a server-streaming RPC's messages become Server-Sent Events or NDJSON lines.

Generic conventions, read from the descriptors once at start-up (README,
"Exposing a new RPC"), so that no RPC needs gateway code:
- SSE `event:` is the name of the set member of the response message's one
  written `oneof`; the message's type name when it has no oneof (or several,
  or none is set).
- SSE `id:` is the response's string field `event_id`, when it has one and it
  is set, so that a reconnecting `EventSource` sends it back as `Last-Event-ID`.
- `data:` is the message rendered by the unary JSON rules (`transcode.renderer`).
- NDJSON is grpc-gateway's framing, which its users parse already: one
  `{"result": <message>}` per line, and `{"error": <envelope>}` for a failure
  after the first line. The message itself carries `event_id` and its oneof
  member, so nothing of the SSE form is lost.
- A failure after the stream started is `event: error` with the error envelope
  as data (SSE) or the `{"error": …}` line (NDJSON); the stream then ends.
- Heartbeats: an SSE comment `: keepalive`, an empty NDJSON line (skip blank lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.transcode.descriptor_info import is_real_oneof_member

SSE_CONTENT_TYPE: Final = "text/event-stream"
NDJSON_CONTENT_TYPE: Final = "application/x-ndjson"
EVENT_ID_FIELD: Final = "event_id"
LAST_EVENT_ID_FIELD: Final = "last_event_id"
LAST_EVENT_ID_HEADER: Final = "Last-Event-ID"
ERROR_EVENT: Final = "error"
# A rendered message is one JSON text; newlines in it can only be whitespace
# between tokens (spliced raw JSON), so they become spaces to keep it one line.
_NEWLINES: Final = bytes.maketrans(b"\r\n", b"  ")


@dataclass(frozen=True, slots=True)
class EventNaming:
    """The SSE `event:` and `id:` of a response message type."""

    type_name: str
    oneof: str | None  # the one written oneof, if the message has exactly one
    has_event_id: bool

    @classmethod
    def of(cls, response: Descriptor) -> EventNaming:
        oneofs = {
            f.containing_oneof.name
            for f in response.fields
            if f.containing_oneof is not None and is_real_oneof_member(f)
        }
        event_id = response.fields_by_name.get(EVENT_ID_FIELD)
        return cls(
            type_name=response.name,
            oneof=oneofs.pop() if len(oneofs) == 1 else None,
            has_event_id=event_id is not None and _is_singular_string(event_id),
        )

    def name(self, message: Message) -> str:
        if self.oneof is not None:
            member = message.WhichOneof(self.oneof)
            if member is not None:
                return str(member)
        return self.type_name

    def event_id(self, message: Message) -> str:
        """The message's `event_id`, or "" (no `id:` line)."""
        if not self.has_event_id:
            return ""
        value = str(getattr(message, EVENT_ID_FIELD))
        # An id with a line break or NUL would break the framing; EventSource ignores NUL ones.
        if "\n" in value or "\r" in value or "\0" in value:
            return ""
        return value


def accepts_last_event_id(request: Descriptor) -> bool:
    """Whether the request has a string field `last_event_id` for `Last-Event-ID`."""
    field = request.fields_by_name.get(LAST_EVENT_ID_FIELD)
    return field is not None and _is_singular_string(field)


def _is_singular_string(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated


def wants_event_stream(accept: str | None) -> bool:
    """Whether `Accept` asks for SSE: `text/event-stream` named, and ranked at
    least as high as NDJSON. Anything else (no header, `*/*`, JSON) gets NDJSON."""
    accept = (accept or "").lower()  # media types are case-insensitive
    if SSE_CONTENT_TYPE not in accept:
        return False
    sse = ndjson = 0.0
    for item in accept.split(","):
        media_type, _, params = item.partition(";")
        media_type = media_type.strip()
        if media_type == SSE_CONTENT_TYPE:
            sse = max(sse, q_value(params))
        elif media_type == NDJSON_CONTENT_TYPE:
            ndjson = max(ndjson, q_value(params))
    return sse > 0 and sse >= ndjson


def q_value(params: str) -> float:
    """The `q` weight in the parameters of one `Accept`-style list item (`;q=0.5`):
    1 when absent, 0 when it does not parse."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


class EventFraming:
    """Turns rendered messages, errors and heartbeats into bytes on the wire."""

    __slots__ = ("content_type", "keepalive", "sse")

    def __init__(self, sse: bool) -> None:
        self.sse = sse
        self.content_type = SSE_CONTENT_TYPE if sse else NDJSON_CONTENT_TYPE
        self.keepalive = b": keepalive\n\n" if sse else b"\n"

    def event(self, name: str, event_id: str, data: bytes) -> bytes:
        data = data.translate(_NEWLINES)
        if not self.sse:
            return b'{"result":' + data + b"}\n"
        id_line = b"id: " + event_id.encode() + b"\n" if event_id else b""
        return b"event: " + name.encode() + b"\n" + id_line + b"data: " + data + b"\n\n"

    def error(self, envelope: bytes) -> bytes:
        envelope = envelope.translate(_NEWLINES)
        if not self.sse:
            return b'{"error":' + envelope + b"}\n"
        return b"event: " + ERROR_EVENT.encode() + b"\ndata: " + envelope + b"\n\n"
