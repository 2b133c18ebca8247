"""The generated document is valid OpenAPI 3.1 and describes execgate's REST routes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from execgate.retrievers.v1 import execution_pb2
from openapi_spec_validator import validate

from gateway.openapi.error_schemas import ERROR_STATUSES
from gateway.transcode.descriptor_info import enum_rest_names

GET_PATH = "/v1/retrievers/{retriever_id}/executions/{execution_id}"
WATCH_PATH = "/v1/retrievers/{retriever_id}/executions/{execution_id}:watch"
LIST_PATH = "/v1/retrievers/{retriever_id}/executions/list"
ALL_ERRORS = {str(status) for status in ERROR_STATUSES}


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _parameters(document: dict[str, Any], operation: dict[str, Any]) -> dict[tuple[str, str], Any]:
    found = {}
    for parameter in operation["parameters"]:
        resolved = _resolve(document, parameter)
        found[(resolved["in"], resolved["name"])] = resolved
    return found


def test_is_valid_openapi_3_1(execution_document: dict[str, Any]) -> None:
    assert execution_document["openapi"] == "3.1.0"
    validate(execution_document)


def test_only_the_annotated_routes(execution_document: dict[str, Any]) -> None:
    assert {p: set(item) for p, item in execution_document["paths"].items()} == {
        GET_PATH: {"get"},
        LIST_PATH: {"post"},
        WATCH_PATH: {"get"},
    }


def test_watch_execution_is_described_as_a_stream(execution_document: dict[str, Any]) -> None:
    operation = execution_document["paths"][WATCH_PATH]["get"]
    assert operation["x-grpc-method"] == "/execgate.retrievers.v1.ExecutionService/WatchExecution"
    content = operation["responses"]["200"]["content"]
    event = {"$ref": "#/components/schemas/ExecutionEvent"}
    assert content["text/event-stream"]["schema"] == event
    names = [e["event"] for e in content["text/event-stream"]["x-sse-events"]]
    assert names == [
        "snapshot",
        "stage_started",
        "stage_progress",
        "stage_completed",
        "budget_changed",
        "completed",
        "failed",
        "heartbeat",
        "error",
    ]
    assert content["application/x-ndjson"]["schema"]["oneOf"][0]["properties"] == {"result": event}
    assert "Last-Event-ID" in {p.get("name") for p in operation["parameters"]}
    assert {"401", "404"} <= set(operation["responses"])


def test_get_execution_operation(execution_document: dict[str, Any]) -> None:
    operation = execution_document["paths"][GET_PATH]["get"]
    assert operation["operationId"] == "ExecutionService_GetExecution"
    assert operation["summary"] == "Get Execution"
    assert operation["description"] == "Get execution details and statistics."
    assert operation["x-grpc-method"] == "/execgate.retrievers.v1.ExecutionService/GetExecution"
    parameters = _parameters(execution_document, operation)
    assert set(parameters) == {
        ("path", "retriever_id"),
        ("path", "execution_id"),
        ("query", "include_legacy_results"),
        ("header", "X-Request-Id"),
        ("header", "X-Request-Timeout"),
        ("header", "If-None-Match"),
    }
    assert parameters[("path", "retriever_id")]["required"] is True
    assert parameters[("path", "retriever_id")]["description"] == "Retriever ID or name."
    assert parameters[("query", "include_legacy_results")]["schema"] == {"type": "boolean"}
    assert parameters[("query", "include_legacy_results")]["required"] is False
    assert "requestBody" not in operation
    responses = operation["responses"]
    # A GET reads no body, so it cannot answer 413 or 415; it may answer 304.
    assert set(responses) == {"200", "304"} | ALL_ERRORS - {"413", "415"}
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExecutionDetail"
    }


def test_list_executions_operation(execution_document: dict[str, Any]) -> None:
    operation = execution_document["paths"][LIST_PATH]["post"]
    parameters = _parameters(execution_document, operation)
    query = {name: p["schema"] for (where, name), p in parameters.items() if where == "query"}
    # `query` is the body; `retriever_id` the path: neither is a query parameter.
    # Bounds, default, aliases and the page number come from `rest_field` options.
    limit = {"type": "integer", "format": "int32", "minimum": 1, "maximum": 1000, "default": 20}
    assert query == {
        "limit": limit,
        "offset": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 10000},
        "cursor": {"type": "string"},
        "include_total": {"type": "boolean"},
        "page_size": limit,
        "next_cursor": {"type": "string"},
        "after": {"type": "string"},
        "page": {"type": "integer", "minimum": 1},
    }
    example = {"status": "completed", "sorts": [{"field": "credits_used", "direction": "desc"}]}
    assert operation["requestBody"] == {
        "required": False,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ExecutionQuery"},
                "example": example,  # from the `query` field's rest_field examples
            }
        },
    }
    assert set(operation["responses"]) == {"200"} | ALL_ERRORS
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ListExecutionsResponse"}


@pytest.mark.parametrize("status", sorted(ERROR_STATUSES))
def test_every_error_status_has_the_envelope(
    status: int, execution_document: dict[str, Any]
) -> None:
    operation = execution_document["paths"][LIST_PATH]["post"]
    response = _resolve(execution_document, operation["responses"][str(status)])
    body = "HTTPValidationError" if status == 422 else "ErrorResponse"
    assert response["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{body}"
    }
    assert "X-Request-Id" in response["headers"]


def test_schemas_follow_the_rendering_rules(execution_document: dict[str, Any]) -> None:
    schemas = execution_document["components"]["schemas"]
    detail = schemas["ExecutionDetail"]["properties"]
    raw_object = {"type": "object", "additionalProperties": True}
    # RawJson: the object itself; NON_EMPTY_DEFAULT never null; a nullable one anyOf null.
    assert {k: detail["pagination"][k] for k in ("type", "additionalProperties")} == raw_object
    assert detail["optimization_summary"]["anyOf"] == [raw_object, {"type": "null"}]
    assert detail["documents"]["items"] == raw_object
    # A deprecated repeated field: nullable array, flagged deprecated.
    assert detail["results"]["anyOf"] == [
        {"type": "array", "items": raw_object},
        {"type": "null"},
    ]
    assert detail["results"]["deprecated"] is True
    # Timestamps, nullable or not; int32 as integer; a map of messages.
    assert detail["created_at"]["type"] == "string"
    assert detail["created_at"]["format"] == "date-time"
    assert detail["completed_at"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert detail["stages_completed"]["type"] == "integer"
    assert schemas["RetrieverExecutionStatistics"]["properties"]["stages"][
        "additionalProperties"
    ] == {"$ref": "#/components/schemas/StageStatistics"}
    stage = schemas["StageStatistics"]["properties"]
    assert stage["llm_calls"]["anyOf"][0]["type"] == "integer"  # int64 is a JSON number
    assert stage["efficiency"]["readOnly"] is True  # OUTPUT_ONLY
    assert schemas["StageStatistics"]["required"] == [
        "input_count",
        "output_count",
        "duration_ms",
        "efficiency",
    ]
    # Enums are their REST names, without the UNSPECIFIED zero.
    names = list(enum_rest_names(execution_pb2.ExecutionStatus.DESCRIPTOR).values())
    assert (
        schemas["ExecutionStatus"]["enum"]
        == names[1:]
        == [
            "pending",
            "processing",
            "completed",
            "failed",
            "running",  # a listing filter value (CONTRACT.md)
        ]
    )
    assert "unspecified" not in orjson.dumps(execution_document).decode()
    assert detail["status"]["$ref"] == "#/components/schemas/ExecutionStatus"  # REQUIRED: no null
    sort = schemas["ExecutionSort"]["properties"]["field"]
    assert sort["anyOf"] == [{"$ref": "#/components/schemas/ExecutionSortField"}, {"type": "null"}]


def test_descriptions_come_from_proto_comments(execution_document: dict[str, Any]) -> None:
    schemas = execution_document["components"]["schemas"]
    assert schemas["StageStatistics"]["description"] == (
        "Execution metrics for a single stage in a retriever execution run."
    )
    # A comment's lines are joined into one paragraph.
    assert schemas["RetrieverExecutionStatistics"]["properties"]["stages"]["description"] == (
        "Per-stage statistics keyed by stage instance name (REQUIRED)."
    )
    assert schemas["ExecutionDetail"]["properties"]["error"]["description"].startswith(
        "OPTIONAL. Retriever-level error message if execution failed. Only present when "
        "status='failed'."
    )
    assert "- `completed`: Finished with documents." in schemas["ExecutionStatus"]["description"]
    tag = execution_document["tags"][0]
    assert tag["name"] == "ExecutionService"
    assert tag["description"].startswith("Read access to execution records")


def test_security_bearer_key_and_namespace_header(execution_document: dict[str, Any]) -> None:
    schemes = execution_document["components"]["securitySchemes"]
    assert schemes["ApiKey"]["type"] == "http"
    assert schemes["ApiKey"]["scheme"] == "bearer"
    assert (schemes["Namespace"]["type"], schemes["Namespace"]["in"]) == ("apiKey", "header")
    assert schemes["Namespace"]["name"] == "X-Namespace"
    assert execution_document["security"] == [{"ApiKey": [], "Namespace": []}, {"ApiKey": []}]


def test_no_descriptor_set_means_no_descriptions() -> None:
    from execgate.retrievers.v1 import execution_service_pb2

    from gateway.openapi import build_openapi

    service = execution_service_pb2.DESCRIPTOR.services_by_name["ExecutionService"]
    document = build_openapi([service], None, title="t", version="1")
    validate(document)
    assert "description" not in document["components"]["schemas"]["ExecutionDetail"]
    assert "description" not in document["paths"][GET_PATH]["get"]
