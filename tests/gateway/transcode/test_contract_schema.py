"""Rendered executions and error bodies validate against the contract's JSON schemas
(the repo's copy of the spec, tests/contract/get-execution.openapi.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import jsonschema
import orjson
import pytest
import yaml
from execgate.retrievers.v1 import execution_pb2

from gateway.errors import (
    FALLBACK_BODY,
    ApiError,
    from_grpc_error,
    render_error,
    render_validation_error,
)
from gateway.transcode.exceptions import ValidationIssue
from gateway.transcode.renderer import compile_response_renderer
from tests.support import transcode_samples as samples

SPEC = Path(__file__).resolve().parents[2] / "contract" / "get-execution.openapi.yaml"
_COMPONENTS: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["components"]
_render = compile_response_renderer(execution_pb2.ExecutionDetail.DESCRIPTOR)
# Nullable per CONTRACT.md: present as null when unset.
_NULLABLE = {
    "cached_at",
    "error",
    "optimization_summary",
    "learned_fusion_context",
    "completed_at",
    "current_stage",
}


def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": _COMPONENTS}
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _assert_valid(schema_name: str, body: bytes) -> dict[str, Any]:
    instance: dict[str, Any] = orjson.loads(body)
    errors = sorted(_validator(schema_name).iter_errors(instance), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    return instance


def test_the_validator_rejects_what_the_contract_forbids() -> None:
    valid = orjson.loads(_render(samples.completed(2)))
    validator = _validator("ExecutionDetail")
    assert validator.is_valid(valid)
    for key, bad in (
        ("created_at", "yesterday"),
        ("documents", [1]),
        ("stages_completed", -1),
        ("pagination", None),
    ):
        assert not validator.is_valid({**valid, key: bad}), key


@pytest.mark.parametrize(
    "detail",
    [
        samples.completed(10),
        samples.completed(0),
        samples.failed(),
        samples.processing(),
        samples.pending(),
    ],
    ids=["completed", "completed-empty", "failed", "processing", "pending"],
)
def test_every_status_validates_and_has_every_contract_field(
    detail: execution_pb2.ExecutionDetail,
) -> None:
    rendered = _assert_valid("ExecutionDetail", _render(detail))
    properties = set(_COMPONENTS["schemas"]["ExecutionDetail"]["properties"])
    assert set(rendered) == properties - {"results"}
    for name in _NULLABLE:
        assert name in rendered


def test_legacy_results_validate_as_an_array_equal_to_documents() -> None:
    detail = samples.completed(3)
    detail.results.json = detail.documents.json
    rendered = _assert_valid("ExecutionDetail", _render(detail))
    assert rendered["results"] == rendered["documents"]


def test_stage_statistics_validate() -> None:
    schema = _validator("StageStatistics")
    for detail in (samples.completed(), samples.failed(), samples.processing()):
        for stage in orjson.loads(_render(detail))["stage_statistics"]["stages"].values():
            assert schema.is_valid(stage), stage


def test_error_envelopes_validate() -> None:
    for status in (400, 401, 403, 404, 405, 409, 413, 415, 429, 499, 500, 501, 503, 504):
        _assert_valid("ErrorResponse", render_error(ApiError(status, "message")).body)
    _assert_valid(
        "ErrorResponse",
        render_error(
            from_grpc_error(grpc.StatusCode.NOT_FOUND, "Execution exec_1 not found", None)
        ).body,
    )
    _assert_valid("ErrorResponse", FALLBACK_BODY)


def test_validation_error_body_validates() -> None:
    issues = [
        ValidationIssue(("query", "include_legacy_results"), "bad", "bool_parsing"),
        ValidationIssue(("body", "sorts", 0, "field"), "bad", "enum"),
    ]
    _assert_valid("HTTPValidationError", render_validation_error(issues).body)
