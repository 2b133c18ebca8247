"""The streaming conventions on their own: event names and IDs, framing, Accept negotiation."""

from __future__ import annotations

import orjson
import pytest
from execgate.testing.v1 import library_pb2

from gateway.stream_events import (
    EventFraming,
    EventNaming,
    accepts_last_event_id,
    wants_event_stream,
)

EVENT = library_pb2.ShelfEvent.DESCRIPTOR


def test_the_event_is_named_after_the_set_oneof_member_else_the_type() -> None:
    naming = EventNaming.of(EVENT)
    assert naming.name(library_pb2.ShelfEvent(snapshot=library_pb2.Shelf())) == "snapshot"
    assert naming.name(library_pb2.ShelfEvent(book_added=library_pb2.Book())) == "book_added"
    assert naming.name(library_pb2.ShelfEvent()) == "ShelfEvent"  # no member set
    assert EventNaming.of(library_pb2.Book.DESCRIPTOR).name(library_pb2.Book()) == "Book"


def test_the_id_is_event_id_when_the_message_has_one_and_it_is_safe() -> None:
    naming = EventNaming.of(EVENT)
    assert naming.event_id(library_pb2.ShelfEvent(event_id="42")) == "42"
    assert naming.event_id(library_pb2.ShelfEvent(event_id="4\n2")) == ""  # would break framing
    assert naming.event_id(library_pb2.ShelfEvent(event_id="4\x002")) == ""
    book = EventNaming.of(library_pb2.Book.DESCRIPTOR)
    assert not book.has_event_id
    assert book.event_id(library_pb2.Book(id="x")) == ""


def test_last_event_id_needs_a_string_field_of_that_name() -> None:
    assert accepts_last_event_id(library_pb2.WatchShelfEventsRequest.DESCRIPTOR)
    assert not accepts_last_event_id(library_pb2.WatchShelfRequest.DESCRIPTOR)


@pytest.mark.parametrize(
    ("accept", "sse"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/x-ndjson", False),
        ("text/event-stream", True),
        ("Text/Event-Stream", True),  # media types are case-insensitive
        ("text/event-stream, application/x-ndjson", True),  # a tie goes to SSE
        ("text/event-stream;q=0.5, application/x-ndjson", False),
        ("application/x-ndjson;q=0.2, text/event-stream;q=0.9", True),
        ("text/event-stream;q=0", False),
        ("text/event-stream;q=bad", False),
    ],
)
def test_accept_chooses_sse_only_when_asked_for(accept: str | None, sse: bool) -> None:
    assert wants_event_stream(accept) is sse


def test_sse_frames_are_one_data_line_with_name_and_id() -> None:
    framing = EventFraming(sse=True)
    data = b'{"doc":{\n"a":1}\r\n}'  # raw JSON spliced from a document may hold line breaks
    frame = framing.event("book_added", "7", data)
    assert frame == b'event: book_added\nid: 7\ndata: {"doc":{ "a":1}  }\n\n'
    assert orjson.loads(frame.split(b"data: ")[1]) == {"doc": {"a": 1}}
    assert framing.event("Book", "", b"{}") == b"event: Book\ndata: {}\n\n"
    assert framing.error(b'{"status":409}') == b'event: error\ndata: {"status":409}\n\n'
    assert framing.keepalive == b": keepalive\n\n"
    assert framing.content_type == "text/event-stream"


def test_ndjson_lines_wrap_results_and_errors_as_grpc_gateway() -> None:
    framing = EventFraming(sse=False)
    line = framing.event("book_added", "7", b'{"a":\n1}')
    assert line.count(b"\n") == 1
    assert orjson.loads(line) == {"result": {"a": 1}}
    assert orjson.loads(framing.error(b'{"status":409}')) == {"error": {"status": 409}}
    assert framing.keepalive == b"\n"
    assert framing.content_type == "application/x-ndjson"
