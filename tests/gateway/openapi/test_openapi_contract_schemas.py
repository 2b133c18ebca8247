"""The generated schemas accept and reject what the contract's schemas do."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from execgate.retrievers.v1 import execution_pb2
from execgate.type.v1 import raw_json_pb2
from google.protobuf import timestamp_pb2
from jsonschema import Draft202012Validator

from gateway.transcode.renderer import compile_response_renderer
from tests.gateway.openapi.schema_shape import refinements, resolve, shape

CONTRACT_SCHEMAS = (
    "ExecutionDetail",
    "RetrieverExecutionStatistics",
    "StageStatistics",
    "ErrorResponse",
    "ErrorDetail",
    "HTTPValidationError",
    "ValidationError",
)


def _validator(document: dict[str, Any], name: str) -> Draft202012Validator:
    # `#/components/...` refs resolve against the root, which carries the components.
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    Draft202012Validator.check_schema(root)
    return Draft202012Validator(root)


@pytest.mark.parametrize("name", CONTRACT_SCHEMAS)
def test_same_properties_types_required_and_nullability(
    name: str, execution_document: dict[str, Any], contract: dict[str, Any]
) -> None:
    generated = shape(execution_document, {"$ref": f"#/components/schemas/{name}"})
    expected = shape(contract, {"$ref": f"#/components/schemas/{name}"})
    assert generated == expected


def _property_refinements(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name in CONTRACT_SCHEMAS:
        schema = resolve(document, {"$ref": f"#/components/schemas/{name}"})
        for prop, sub in schema.get("properties", {}).items():
            # Numeric formats (int64, double) only annotate; date-time is in the shape.
            kept = {
                k: v
                for k, v in refinements(document, sub).items()
                if k != "format" or v == "date-time"
            }
            if kept:
                found[(name, prop)] = kept
    return found


def test_refinements_differ_only_where_known(
    execution_document: dict[str, Any], contract: dict[str, Any]
) -> None:
    """Keywords outside the shape (enum, minimum, ...): only the status values are added."""
    generated = _property_refinements(execution_document)
    expected = _property_refinements(contract)
    differences = {
        key: (generated.get(key), expected.get(key))
        for key in generated.keys() | expected.keys()
        if generated.get(key) != expected.get(key)
    }
    assert expected[("StageStatistics", "llm_calls")] == {"minimum": 0}  # inside anyOf too
    assert differences == {
        # The contract's status is a free string; the protos name the values (CONTRACT.md),
        # without the UNSPECIFIED zero, which is never rendered; `running` is a listing
        # filter value of the same enum (CONTRACT.md, List executions).
        ("ExecutionDetail", "status"): (
            {"enum": ["pending", "processing", "completed", "failed", "running"]},
            None,
        ),
    }


def _property_examples(document: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        (name, prop): sub["examples"]
        for name in CONTRACT_SCHEMAS
        for prop, sub in resolve(document, {"$ref": f"#/components/schemas/{name}"})
        .get("properties", {})
        .items()
        if "examples" in sub
    }


def test_property_examples_are_the_contracts(
    execution_document: dict[str, Any], contract: dict[str, Any]
) -> None:
    expected = _property_examples(contract)
    assert len(expected) >= 9
    assert _property_examples(execution_document) == expected


def test_examples_validate_against_their_property(execution_document: dict[str, Any]) -> None:
    for (name, prop), examples in _property_examples(execution_document).items():
        root = {
            **resolve(execution_document, {"$ref": f"#/components/schemas/{name}"})["properties"][
                prop
            ],
            "components": execution_document["components"],
        }
        for example in examples:
            assert Draft202012Validator(root).is_valid(example), (name, prop, example)


_STAGE: dict[str, Any] = {
    "input_count": 5000,
    "output_count": 250,
    "duration_ms": 123.4,
    "efficiency": 0.05,
    "cache_hit": False,
    "cached_at": None,
    "error": None,
    "llm_calls": None,
    "tokens_used": None,
    "metadata": {},
}
_COMPLETED: dict[str, Any] = {
    "retriever_id": "ret_abc123def456",
    "execution_id": "exec_abc123def456",
    "status": "completed",
    "documents": [{"document_id": "doc_1", "score": 0.9}],
    "pagination": {"limit": 10, "offset": 0},
    "stage_statistics": {"stages": {"search": _STAGE}, "total_time_ms": 150, "credits_used": 0.5},
    "budget": {"credits_used": 0.5},
    "cached_at": None,
    "warnings": [],
    "error": None,
    "optimization_applied": False,
    "optimization_summary": None,
    "learned_fusion_context": None,
    "created_at": "2026-11-28T20:31:35Z",
    "completed_at": "2026-11-28T20:31:36.120Z",
    "current_stage": None,
    "stages_completed": 1,
    "total_stages": 1,
}


def _with(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(base)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def _without(base: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(base)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


_STAGES = ("stage_statistics", "stages", "search")
# (schema, instance, accepted by the contract)
SAMPLES: list[tuple[str, Any, bool]] = [
    ("ExecutionDetail", _COMPLETED, True),
    ("ExecutionDetail", _with(_COMPLETED, ("results",), _COMPLETED["documents"]), True),
    ("ExecutionDetail", _with(_COMPLETED, ("results",), None), True),
    ("ExecutionDetail", _with(_COMPLETED, ("cached_at",), 1764361895.5), True),
    ("ExecutionDetail", _with(_COMPLETED, ("optimization_summary",), {"rules": []}), True),
    ("ExecutionDetail", {"execution_id": "exec_1", "status": "pending"}, True),
    ("ExecutionDetail", _without(_COMPLETED, ("execution_id",)), False),
    ("ExecutionDetail", _without(_COMPLETED, ("status",)), False),
    ("ExecutionDetail", _with(_COMPLETED, ("status",), None), False),
    ("ExecutionDetail", _with(_COMPLETED, ("documents",), None), False),
    ("ExecutionDetail", _with(_COMPLETED, ("documents",), [1, 2]), False),
    ("ExecutionDetail", _with(_COMPLETED, ("pagination",), None), False),
    ("ExecutionDetail", _with(_COMPLETED, ("budget",), []), False),
    ("ExecutionDetail", _with(_COMPLETED, ("cached_at",), "1764361895"), False),
    ("ExecutionDetail", _with(_COMPLETED, ("warnings",), [1]), False),
    ("ExecutionDetail", _with(_COMPLETED, ("optimization_applied",), None), False),
    ("ExecutionDetail", _with(_COMPLETED, ("created_at",), None), False),
    ("ExecutionDetail", _with(_COMPLETED, ("stages_completed",), 1.5), False),
    ("ExecutionDetail", _with(_COMPLETED, ("stages_completed",), "1"), False),
    ("ExecutionDetail", _with(_COMPLETED, ("results",), {}), False),
    ("ExecutionDetail", _with(_COMPLETED, ("stage_statistics",), None), False),
    ("ExecutionDetail", _with(_COMPLETED, ("stage_statistics", "stages"), []), False),
    ("ExecutionDetail", _with(_COMPLETED, (*_STAGES, "efficiency"), "0.05"), False),
    ("ExecutionDetail", _without(_COMPLETED, (*_STAGES, "input_count")), False),
    ("ExecutionDetail", _with(_COMPLETED, (*_STAGES, "llm_calls"), 2.5), False),
    ("ExecutionDetail", _with(_COMPLETED, (*_STAGES, "cache_hit"), "no"), False),
    ("ExecutionDetail", _with(_COMPLETED, (*_STAGES, "metadata"), None), False),
    ("RetrieverExecutionStatistics", {}, True),
    ("RetrieverExecutionStatistics", {"stages": {}, "total_time_ms": None}, False),
    ("StageStatistics", {k: _STAGE[k] for k in list(_STAGE)[:4]}, True),
    ("StageStatistics", _with(_STAGE, ("tokens_used",), 1200), True),
    ("StageStatistics", _with(_STAGE, ("error",), 7), False),
    ("StageStatistics", _with(_STAGE, ("duration_ms",), None), False),
    (
        "ErrorResponse",
        {
            "success": False,
            "status": 404,
            "error": {
                "message": "Execution not found",
                "type": "NotFoundError",
                "code": "execution_not_found",
                "details": {"resource": "execution", "id": "exec_1"},
            },
        },
        True,
    ),
    (
        "ErrorResponse",
        {"status": 500, "error": {"message": "m", "type": "InternalServerError"}},
        True,
    ),
    ("ErrorResponse", {"success": False, "error": {"message": "m", "type": "t"}}, False),
    ("ErrorResponse", {"status": "404", "error": {"message": "m", "type": "t"}}, False),
    ("ErrorResponse", {"status": 404, "error": None}, False),
    ("ErrorDetail", {"message": "m", "type": "t", "code": None, "details": None}, True),
    ("ErrorDetail", {"message": "m", "type": "t", "code": 404}, False),
    ("ErrorDetail", {"message": "m", "type": "t", "details": ["x"]}, False),
    ("ErrorDetail", {"message": "m"}, False),
    (
        "HTTPValidationError",
        {"detail": [{"loc": ["query", "limit"], "msg": "bad", "type": "int_parsing"}]},
        True,
    ),
    (
        "HTTPValidationError",
        {"detail": [{"loc": ["body", "sorts", 0], "msg": "m", "type": "t"}]},
        True,
    ),
    ("HTTPValidationError", {}, True),
    ("HTTPValidationError", {"detail": [{"loc": ["query", 1.5], "msg": "m", "type": "t"}]}, False),
    ("HTTPValidationError", {"detail": [{"loc": ["query"], "type": "t"}]}, False),
    ("HTTPValidationError", {"detail": "not a list"}, False),
]


@pytest.mark.parametrize(("name", "instance", "accepted"), SAMPLES)
def test_samples_get_the_same_verdict(
    name: str,
    instance: Any,
    accepted: bool,
    execution_document: dict[str, Any],
    contract: dict[str, Any],
) -> None:
    assert _validator(contract, name).is_valid(instance) is accepted
    assert _validator(execution_document, name).is_valid(instance) is accepted


def _raw(value: Any) -> raw_json_pb2.RawJson:
    return raw_json_pb2.RawJson(json=orjson.dumps(value).decode())


def _rendered_executions() -> list[execution_pb2.ExecutionDetail]:
    """Messages in each state the service stores, rendered by the gateway's own renderer."""
    created = timestamp_pb2.Timestamp(seconds=1_764_361_895, nanos=120_000_000)
    pending = execution_pb2.ExecutionDetail(
        retriever_id="ret_a1",
        execution_id="exec_p1",
        status=execution_pb2.EXECUTION_STATUS_PENDING,
        created_at=created,
        total_stages=2,
    )
    processing = execution_pb2.ExecutionDetail()
    processing.CopyFrom(pending)
    processing.status = execution_pb2.EXECUTION_STATUS_PROCESSING
    processing.current_stage = "rerank"
    processing.stages_completed = 1
    processing.stage_statistics.stages["search"].CopyFrom(
        execution_pb2.StageStatistics(
            input_count=10,
            output_count=5,
            duration_ms=3.5,
            efficiency=0.5,
            cache_hit=True,
            cached_at=1_764_361_000.25,
            llm_calls=0,
            tokens_used=0,
            metadata=_raw({"k": 1}),
        )
    )
    completed = execution_pb2.ExecutionDetail()
    completed.CopyFrom(processing)
    completed.status = execution_pb2.EXECUTION_STATUS_COMPLETED
    completed.ClearField("current_stage")
    completed.completed_at.CopyFrom(created)
    completed.documents.json = orjson.dumps([{"document_id": "d1", "score": 0.9}]).decode()
    completed.results.json = completed.documents.json
    completed.pagination.CopyFrom(_raw({"limit": 10}))
    completed.optimization_applied = True
    completed.optimization_summary.CopyFrom(_raw({"rules_applied": []}))
    completed.learned_fusion_context.CopyFrom(_raw({"context_level": "global"}))
    completed.cached_at = 1_764_361_900.0
    failed = execution_pb2.ExecutionDetail()
    failed.CopyFrom(pending)
    failed.status = execution_pb2.EXECUTION_STATUS_FAILED
    failed.error = "Collection not found"
    failed.completed_at.CopyFrom(created)
    return [pending, processing, completed, failed]


@pytest.mark.parametrize(
    "message", _rendered_executions(), ids=lambda m: m.execution_id + "-" + str(m.status)
)
def test_rendered_executions_validate_against_both(
    message: execution_pb2.ExecutionDetail,
    execution_document: dict[str, Any],
    contract: dict[str, Any],
) -> None:
    body = orjson.loads(
        compile_response_renderer(execution_pb2.ExecutionDetail.DESCRIPTOR)(message)
    )
    assert _validator(contract, "ExecutionDetail").is_valid(body)
    assert _validator(execution_document, "ExecutionDetail").is_valid(body)
