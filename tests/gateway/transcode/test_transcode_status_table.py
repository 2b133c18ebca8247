"""The gRPC code -> HTTP status table (CONTRACT.md), row by row, and the error types."""

from __future__ import annotations

import grpc
import pytest

from gateway.transcode.status_table import (
    HTTP_STATUS_BY_GRPC_CODE,
    error_type_for,
    http_status_for,
)

_G = grpc.StatusCode
# Copied from CONTRACT.md, "gRPC status -> HTTP status".
CONTRACT_ROWS = [
    (_G.OK, 200),
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
    assert http_status_for(code) == status


def test_every_grpc_code_has_a_row() -> None:
    assert set(HTTP_STATUS_BY_GRPC_CODE) == set(grpc.StatusCode)
    assert len(CONTRACT_ROWS) == len(grpc.StatusCode)


def test_a_code_outside_the_table_is_500() -> None:
    assert http_status_for("not a code") == 500  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "BadRequestError"),
        (401, "UnauthorizedError"),
        (403, "ForbiddenError"),
        (404, "NotFoundError"),
        (405, "MethodNotAllowedError"),
        (409, "AlreadyExistsError"),
        (413, "PayloadTooLargeError"),
        (415, "UnsupportedMediaTypeError"),
        (429, "TooManyRequestsError"),
        (499, "ClientClosedRequestError"),
        (500, "InternalServerError"),
        (501, "NotImplementedError"),
        (503, "ServiceUnavailableError"),
        (504, "GatewayTimeoutError"),
        (418, "BadRequestError"),
        (502, "InternalServerError"),
    ],
)
def test_error_type_vocabulary(status: int, error_type: str) -> None:
    assert error_type_for(status) == error_type
