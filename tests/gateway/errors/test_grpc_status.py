"""The gRPC code -> HTTP status table (CONTRACT.md), row by row, and the error types."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

from gateway.errors import STATUS_TEXTS, error_type_for, failure_for, from_grpc_error
from gateway.errors.grpc_status import rpc_error

_G = grpc.StatusCode
CONTRACT_MD = Path(__file__).resolve().parents[3] / "docs" / "CONTRACT.md"
# Copied from CONTRACT.md, "gRPC status -> HTTP status".
CONTRACT_ROWS = [
    (_G.CANCELLED, 499),
    (_G.UNKNOWN, 500),
    (_G.INVALID_ARGUMENT, 400),
    (_G.DEADLINE_EXCEEDED, 504),
    (_G.NOT_FOUND, 404),
    (_G.ALREADY_EXISTS, 409),
    (_G.PERMISSION_DENIED, 403),
    (_G.UNAUTHENTICATED, 401),
    (_G.RESOURCE_EXHAUSTED, 429),
    (_G.FAILED_PRECONDITION, 400),
    (_G.ABORTED, 409),
    (_G.OUT_OF_RANGE, 400),
    (_G.UNIMPLEMENTED, 501),
    (_G.INTERNAL, 500),
    (_G.UNAVAILABLE, 503),
    (_G.DATA_LOSS, 500),
]


@pytest.mark.parametrize(("code", "status"), CONTRACT_ROWS, ids=[c.name for c, _ in CONTRACT_ROWS])
def test_contract_row(code: grpc.StatusCode, status: int) -> None:
    assert from_grpc_error(code, "plain words", None).status == status


def test_every_failing_grpc_code_has_its_own_entry() -> None:
    assert len(CONTRACT_ROWS) == len(grpc.StatusCode) - 1  # all but OK
    for code, _ in CONTRACT_ROWS:
        assert failure_for(rpc_error(code, "m")).name == f"grpc_{code.name.lower()}"


@pytest.mark.parametrize(
    "details",
    [
        "SERVER: Sent message larger than max (20000000 vs. 16777216)",
        "Stream removed (CLIENT: Received message larger than max (2000 vs. 1000))",
    ],
)
def test_message_size_limit_is_502_response_too_large_not_429(details: str) -> None:
    error = from_grpc_error(_G.RESOURCE_EXHAUSTED, details, None)
    assert (error.status, error.code) == (502, "response_too_large")
    assert "16777216" not in error.message


def _contract_vocabulary() -> dict[int, str]:
    text = CONTRACT_MD.read_text(encoding="utf-8")
    section = text.split("## Error envelope", 1)[1].split("\n- `code`", 1)[0]
    return {int(status): name for status, name in re.findall(r"(\d{3})\s+`(\w+)`", section)}


def test_vocabulary_is_the_contracts() -> None:
    ours = {status: text.type for status, text in STATUS_TEXTS.items() if status != 422}
    assert ours == _contract_vocabulary()


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "BadRequestError"),
        (404, "NotFoundError"),
        (414, "URITooLongError"),
        (417, "ExpectationFailedError"),
        (431, "RequestHeaderFieldsTooLargeError"),
        (502, "BadGatewayError"),
        (418, "BadRequestError"),
        (505, "InternalServerError"),
    ],
)
def test_a_status_outside_the_vocabulary_reads_as_400_or_500(status: int, error_type: str) -> None:
    assert error_type_for(status) == error_type
