"""Request ids, and every failure class → its status, envelope and headers (one mapping)."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import orjson
import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadStatusLine, LineTooLong
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from gateway.middleware import error_response, request_id_from
from gateway.routing import BadPathError, MethodNotAllowedError, RouteNotFoundError
from gateway.transcode.exceptions import (
    InvalidJsonError,
    RequestValidationError,
    UnsupportedMediaTypeError,
    ValidationIssue,
)
from gateway.upstream import InvalidRequestHeaderError


def _body(response: web.Response) -> dict[str, Any]:
    assert response.content_type == "application/json"
    assert isinstance(response.body, bytes)
    body: dict[str, Any] = orjson.loads(response.body)
    return body


def _envelope(response: web.Response) -> dict[str, Any]:
    body = _body(response)
    assert set(body) == {"success", "status", "error"}
    assert body["success"] is False
    assert body["status"] == response.status
    assert set(body["error"]) == {"message", "type", "code", "details"}
    return body["error"]  # type: ignore[no-any-return]


def test_request_id_keeps_a_safe_client_value() -> None:
    assert request_id_from("abc-123_X.y:z") == "abc-123_X.y:z"


@pytest.mark.parametrize("value", [None, "", "a" * 129, "bad id", "x\u00e9", "-leading", "a;b"])
def test_request_id_replaces_a_missing_or_unsafe_value(value: str | None) -> None:
    generated = request_id_from(value)
    assert generated != value
    assert len(generated) == 32
    assert request_id_from(value) != generated  # fresh every time


@pytest.mark.parametrize(
    ("exc", "status", "code", "error_type"),
    [
        (RouteNotFoundError(), 404, "route_not_found", "NotFoundError"),
        (BadPathError("Empty path segment"), 400, "invalid_path", "BadRequestError"),
        (InvalidJsonError("x"), 400, "invalid_json", "BadRequestError"),
        (UnsupportedMediaTypeError("text/plain"), 415, "unsupported_media_type", None),
        (
            InvalidRequestHeaderError("x-request-timeout", "bad"),
            400,
            "invalid_header",
            "BadRequestError",
        ),
        (web.HTTPRequestEntityTooLarge(1, 2), 413, "payload_too_large", "PayloadTooLargeError"),
        (LineTooLong(b"x" * 10, 8190), 431, "header_too_large", None),
        (LineTooLong(b"/v1/" + b"x" * 10, 8190), 414, "uri_too_long", None),
        (BadHttpMessage("Too many headers received"), 431, "too_many_headers", None),
        (BadStatusLine("garbage"), 400, "malformed_request", "BadRequestError"),
    ],
)
def test_failure_envelopes(exc: Exception, status: int, code: str, error_type: str | None) -> None:
    response = error_response(exc, "req-1", 1)
    assert response.status == status
    error = _envelope(response)
    assert error["code"] == code
    if error_type is not None:
        assert error["type"] == error_type


def test_method_not_allowed_lists_the_allowed_methods() -> None:
    response = error_response(MethodNotAllowedError({"GET", "HEAD"}), "req-1", 1)
    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD"
    error = _envelope(response)
    assert (error["type"], error["code"]) == ("MethodNotAllowedError", "method_not_allowed")


def test_validation_errors_are_422_http_validation_error() -> None:
    issue = ValidationIssue(("query", "limit"), "Input should be a valid integer", "int_parsing")
    response = error_response(RequestValidationError([issue]), "req-1", 1)
    assert response.status == 422
    assert _body(response) == {
        "detail": [
            {
                "loc": ["query", "limit"],
                "msg": "Input should be a valid integer",
                "type": "int_parsing",
            }
        ]
    }


def test_unexpected_exception_is_a_generic_500_and_the_cause_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="execgate.gateway"):
        response = error_response(KeyError("secret-table-name"), "req-42", 1)
    assert response.status == 500
    error = _envelope(response)
    assert error["type"] == "InternalServerError"
    assert "secret" not in orjson.dumps(error).decode()
    (record,) = [r for r in caplog.records if r.name == "execgate.gateway"]
    assert getattr(record, "request_id", None) == "req-42"
    assert "secret-table-name" in record.getMessage()


def _rpc_error(
    code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, str | bytes], ...] = ()
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details
    )


def test_grpc_error_takes_code_and_details_from_error_info() -> None:
    info = error_details_pb2.ErrorInfo(
        reason="EXECUTION_NOT_FOUND", domain="execgate", metadata={"resource": "execution"}
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=5, message="Execution not found", details=[detail])
    error = _rpc_error(
        grpc.StatusCode.NOT_FOUND,
        "Execution not found",
        (("grpc-status-details-bin", status.SerializeToString()), ("etag", '"x"')),
    )
    response = error_response(error, "req-1", 1)
    assert response.status == 404
    assert _envelope(response) == {
        "message": "Execution not found",
        "type": "NotFoundError",
        "code": "execution_not_found",
        "details": {"resource": "execution"},
    }
    assert response.headers["ETag"] == '"x"'


def test_unavailable_is_503_with_retry_after_and_no_address() -> None:
    error = _rpc_error(grpc.StatusCode.UNAVAILABLE, "failed to connect to ipv4:127.0.0.1:1")
    response = error_response(error, "req-1", 7)
    assert response.status == 503
    assert response.headers["Retry-After"] == "7"
    error_body = _envelope(response)
    assert error_body["code"] == "backend_unavailable"
    assert "127.0.0.1" not in error_body["message"]


def test_service_retry_after_wins() -> None:
    error = _rpc_error(grpc.StatusCode.UNAVAILABLE, "busy", (("retry-after", "30"),))
    assert error_response(error, "req-1", 1).headers["Retry-After"] == "30"


def test_deadline_is_504() -> None:
    response = error_response(_rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "x"), "r", 1)
    assert response.status == 504
    assert _envelope(response)["code"] == "deadline_exceeded"
