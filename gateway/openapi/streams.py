"""The 200 answer of a server-streaming route: SSE and NDJSON, each with its event schemas.

OpenAPI 3.1 has no schema for a sequence of items, so each media type's
`schema` describes ONE item: an NDJSON line (`{"result": message}` or
`{"error": envelope}`), and for SSE the `data` of an event, with
`x-sse-events` naming every event the stream sends (each oneof member of the
response message, or its type name, plus `error`) and whether it carries an
`id:`. The conventions are `gateway.stream_events`'; this module only
describes them.
"""

from __future__ import annotations

from typing import Final

from gateway.openapi.error_schemas import ERROR_RESPONSE
from gateway.openapi.schemas import Schema
from gateway.routing.annotations import Route
from gateway.stream_events import (
    ERROR_EVENT,
    LAST_EVENT_ID_HEADER,
    NDJSON_CONTENT_TYPE,
    SSE_CONTENT_TYPE,
    EventNaming,
    accepts_last_event_id,
)
from gateway.transcode.descriptor_info import is_real_oneof_member

LAST_EVENT_ID_PARAMETER: Final[Schema] = {
    "name": LAST_EVENT_ID_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Resume after this event ID (an SSE `id:`, a message's `event_id`): the events "
        "that followed it are sent, without loss or duplicates. A reconnecting "
        "`EventSource` sends it by itself; it overrides a `last_event_id` query parameter."
    ),
    "schema": {"type": "string", "maxLength": 256},
}

_ERROR_REF: Final[Schema] = {"$ref": f"#/components/schemas/{ERROR_RESPONSE}"}


def stream_response(route: Route, message_schema: Schema) -> Schema:
    """The 200 response object of a streaming route; `message_schema` is one message's."""
    naming = EventNaming.of(route.response)
    events = [
        {"event": name, "id": naming.has_event_id, "data": message_schema}
        for name in _event_names(route, naming)
    ]
    events.append({"event": ERROR_EVENT, "id": False, "data": _ERROR_REF})
    ndjson_line: Schema = {
        "oneOf": [
            _wrapper("result", message_schema, "One message of the stream."),
            _wrapper("error", _ERROR_REF, "The stream failed after it started; it ends here."),
        ]
    }
    return {
        "description": (
            "A stream of events until the RPC ends. `Accept: text/event-stream` gets "
            "Server-Sent Events (the schema is one event's `data`); anything else gets "
            "NDJSON, one JSON object per line (the schema is one line). An error before "
            "the first event is a regular error response; after it, an `error` event "
            "(SSE) or an `error` line (NDJSON), and the stream ends. Quiet streams carry "
            "heartbeats: SSE comments, empty NDJSON lines."
        ),
        "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
        "content": {
            SSE_CONTENT_TYPE: {"schema": message_schema, "x-sse-events": events},
            NDJSON_CONTENT_TYPE: {"schema": ndjson_line},
        },
    }


def stream_parameters(route: Route) -> list[Schema]:
    """Header parameters only streaming routes take."""
    return [dict(LAST_EVENT_ID_PARAMETER)] if accepts_last_event_id(route.request) else []


def _event_names(route: Route, naming: EventNaming) -> list[str]:
    if naming.oneof is None:
        return [naming.type_name]
    return [
        field.name
        for field in route.response.fields
        if is_real_oneof_member(field)
        and field.containing_oneof is not None
        and field.containing_oneof.name == naming.oneof
    ]


def _wrapper(key: str, schema: Schema, description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "properties": {key: schema},
        "required": [key],
        "additionalProperties": False,
    }
