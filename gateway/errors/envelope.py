"""The bytes of an error answer: the envelope, the 422 body, and the body sent if both fail.

Every non-2xx answer except 422 is
`{"success": false, "status": N, "error": {"message", "type", "code", "details"}}`;
422 is `{"detail": [{"loc", "msg", "type"}, ...]}` (CONTRACT.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

import orjson

from gateway.errors.vocabulary import error_type_for
from gateway.transcode.exceptions import ValidationIssue

# Sent when rendering an error fails: hand-written, so it cannot fail in turn.
FALLBACK_STATUS: Final = 500
FALLBACK_BODY: Final = (
    b'{"success":false,"status":500,"error":{"message":"Internal server error",'
    b'"type":"InternalServerError","code":null,"details":null}}'
)


@dataclass(frozen=True, slots=True)
class ApiError:
    """What an error envelope says; `details` must be JSON-serialisable."""

    status: int
    message: str
    code: str | None = None
    details: Mapping[str, object] | None = None


class RenderedError(NamedTuple):
    status: int
    body: bytes


def render_error(error: ApiError) -> RenderedError:
    """The envelope for `error`; the hard-coded 500 body if it cannot be rendered."""
    try:
        body = orjson.dumps(
            {
                "success": False,
                "status": error.status,
                "error": {
                    "message": error.message,
                    "type": error_type_for(error.status),
                    "code": error.code,
                    "details": error.details,
                },
            }
        )
    except (TypeError, orjson.JSONEncodeError):
        return RenderedError(FALLBACK_STATUS, FALLBACK_BODY)
    return RenderedError(error.status, body)


def render_validation_error(issues: Sequence[ValidationIssue]) -> RenderedError:
    """The 422 `HTTPValidationError` body."""
    try:
        body = orjson.dumps(
            {"detail": [{"loc": list(i.loc), "msg": i.msg, "type": i.type} for i in issues]}
        )
    except (TypeError, orjson.JSONEncodeError):
        return RenderedError(FALLBACK_STATUS, FALLBACK_BODY)
    return RenderedError(422, body)
