"""Error bodies: the envelope, the 422 body, gRPC errors with ErrorInfo, and no leaks."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from gateway.errors import (
    FALLBACK_BODY,
    FALLBACK_STATUS,
    ApiError,
    from_grpc_error,
    generic_message,
    render_error,
    render_exception,
    render_validation_error,
)
from gateway.transcode.exceptions import (
    InvalidJsonError,
    RenderError,
    RequestValidationError,
    UnsupportedMediaTypeError,
    ValidationIssue,
)

_G = grpc.StatusCode


def _status_details(
    reason: str, metadata: dict[str, str], domain: str = "execgate", code: int = 5
) -> tuple[tuple[str, bytes]]:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=metadata))
    status = status_pb2.Status(code=code, message="m", details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()),)


def _body(rendered: tuple[int, bytes]) -> Any:
    return orjson.loads(rendered[1])


def test_envelope_shape() -> None:
    rendered = render_error(
        ApiError(404, "Execution not found", "execution_not_found", {"id": "exec_1"})
    )
    assert rendered.status == 404
    assert _body(rendered) == {
        "success": False,
        "status": 404,
        "error": {
            "message": "Execution not found",
            "type": "NotFoundError",
            "code": "execution_not_found",
            "details": {"id": "exec_1"},
        },
    }


def test_envelope_that_cannot_be_rendered_falls_back() -> None:
    rendered = render_error(ApiError(400, "bad", "c", {"x": object()}))
    assert rendered == (FALLBACK_STATUS, FALLBACK_BODY)
    assert _body(rendered)["error"]["type"] == "InternalServerError"


def test_validation_body() -> None:
    rendered = render_validation_error(
        [ValidationIssue(("query", "include_legacy_results"), "Input ...", "bool_parsing")]
    )
    assert rendered.status == 422
    assert _body(rendered) == {
        "detail": [
            {"loc": ["query", "include_legacy_results"], "msg": "Input ...", "type": "bool_parsing"}
        ]
    }


def test_grpc_error_with_error_info() -> None:
    error = from_grpc_error(
        _G.NOT_FOUND,
        "Execution exec_abc not found",
        (
            ("etag", "x"),
            *_status_details("EXECUTION_NOT_FOUND", {"resource": "execution", "id": "exec_abc"}),
        ),
    )
    assert error == ApiError(
        404,
        "Execution exec_abc not found",
        "execution_not_found",
        {"resource": "execution", "id": "exec_abc"},
    )


def test_grpc_error_without_details() -> None:
    assert from_grpc_error(_G.INVALID_ARGUMENT, "limit must be 1..1000", None) == ApiError(
        400, "limit must be 1..1000", None, None
    )


def test_error_info_with_empty_metadata_gives_null_details() -> None:
    error = from_grpc_error(
        _G.UNAUTHENTICATED, "Missing API key", _status_details("MISSING_API_KEY", {})
    )
    assert (error.status, error.code, error.details) == (401, "missing_api_key", None)


def test_undecodable_status_details_are_ignored() -> None:
    error = from_grpc_error(
        _G.NOT_FOUND, "Not here", (("grpc-status-details-bin", b"\xff\xff\xff"),)
    )
    assert (error.status, error.message, error.code) == (404, "Not here", None)


def test_reason_that_is_not_a_code_is_dropped() -> None:
    error = from_grpc_error(_G.NOT_FOUND, "x", _status_details("Not A Code!", {}))
    assert error.code is None


@pytest.mark.parametrize(
    ("code", "message", "status", "error_code"),
    [
        (_G.INTERNAL, "Unexpected <class 'KeyError'>: 'x'", 500, None),
        (_G.UNKNOWN, "Unexpected <class 'ValueError'>: boom", 500, None),
        (_G.UNKNOWN, "anything at all", 500, None),
        (
            _G.UNAVAILABLE,
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:50051: "
            "Failed to connect to remote host: Connection refused",
            503,
            "backend_unavailable",
        ),
        (_G.DEADLINE_EXCEEDED, "Deadline Exceeded", 504, "deadline_exceeded"),
        (_G.CANCELLED, "Locally cancelled by application!", 499, None),
        (_G.UNIMPLEMENTED, "Method not found!", 501, None),
        (_G.RESOURCE_EXHAUSTED, "Received message larger than max (5 vs. 4)", 429, None),
        (_G.INVALID_ARGUMENT, "Traceback (most recent call last): ...", 400, None),
        (_G.FAILED_PRECONDITION, "sqlite3.OperationalError: database is locked", 400, None),
        (_G.NOT_FOUND, "no row: SELECT * FROM executions", 404, None),
        (_G.ABORTED, 'File "/srv/app/service.py", line 3', 409, None),
        (_G.NOT_FOUND, "", 404, None),
        (_G.NOT_FOUND, "lookup failed: KeyError", 404, None),
        (_G.ABORTED, "ConflictException raised", 409, None),
        (_G.NOT_FOUND, "dial 10.0.0.7 refused", 404, None),
        (_G.NOT_FOUND, "no answer from db-primary:5432", 404, None),
        (_G.NOT_FOUND, "cannot open '/var/lib/execgate.db'", 404, None),
        (_G.NOT_FOUND, "failed: DELETE FROM executions", 404, None),
        (_G.NOT_FOUND, "bound to [::1]", 404, None),
        (_G.NOT_FOUND, "via dns:primary", 404, None),
    ],
)
def test_messages_that_may_carry_internals_become_generic(
    code: grpc.StatusCode, message: str, status: int, error_code: str | None
) -> None:
    error = from_grpc_error(code, message, None)
    assert (error.status, error.code) == (status, error_code)
    assert error.message == generic_message(status)


@pytest.mark.parametrize(
    "message",
    [
        "Execution exec_0123456789abcdefabcd was not found in retriever ret_0123.",
        "The API key is not valid for namespace demo.",
        "Updated 3 stages; Deleted none; errors: 0",
        "limit must be between 1 and 500",
        "ratio 1.5 of 2.0, retry in 3 s",
    ],
)
def test_plain_messages_are_kept(message: str) -> None:
    assert from_grpc_error(_G.NOT_FOUND, message, None).message == message


def test_service_authored_runtime_code_keeps_its_message() -> None:
    error = from_grpc_error(
        _G.UNAVAILABLE,
        "The store is restarting; retry later",
        _status_details("STORE_UNAVAILABLE", {}, code=14),
    )
    assert (error.message, error.code) == (
        "The store is restarting; retry later",
        "store_unavailable",
    )


def test_service_authored_message_that_looks_internal_is_still_replaced() -> None:
    error = from_grpc_error(
        _G.INTERNAL, "Unexpected <class 'KeyError'>", _status_details("INTERNAL", {}, code=13)
    )
    assert error.message == generic_message(500)
    assert error.code == "internal"


def test_other_domains_do_not_vouch_for_runtime_messages() -> None:
    error = from_grpc_error(
        _G.UNAVAILABLE, "upstream x down", _status_details("DOWN", {}, domain="other", code=14)
    )
    assert error.message == generic_message(503)
    assert error.code == "down"


def test_rendered_grpc_error_never_contains_internals() -> None:
    body = render_error(
        from_grpc_error(_G.INTERNAL, "Unexpected <class 'sqlite3.OperationalError'>", None)
    ).body
    assert b"sqlite" not in body
    assert b"class" not in body


@pytest.mark.parametrize(
    ("exception", "status", "code"),
    [
        (InvalidJsonError("unexpected character: line 1 column 2 (char 1)"), 400, "invalid_json"),
        (UnsupportedMediaTypeError("text/plain"), 415, "unsupported_media_type"),
        (RenderError("timestamp out of range"), 500, None),
        (KeyError("secret internal detail"), 500, None),
    ],
)
def test_exceptions_render_to_envelopes(
    exception: Exception, status: int, code: str | None
) -> None:
    rendered = render_exception(exception)
    body = _body(rendered)
    assert rendered.status == body["status"] == status
    assert body["error"]["code"] == code
    assert b"secret" not in rendered.body
    assert b"out of range" not in rendered.body


def test_validation_exception_renders_the_422_body() -> None:
    issue = ValidationIssue(("body", "status"), "Input should be 'pending'", "enum")
    rendered = render_exception(RequestValidationError([issue]))
    assert rendered.status == 422
    assert _body(rendered)["detail"][0]["loc"] == ["body", "status"]
