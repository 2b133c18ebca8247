"""The envelope's `type` vocabulary: one `type`, reason phrase and generic message per HTTP status.

CONTRACT.md's table ("Error envelope") is this mapping; a status the gateway answers
must be here, so that its `type` is part of the contract and of the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class StatusText:
    """What the gateway says about an HTTP status whatever the failure."""

    phrase: str  # reason phrase; also names the OpenAPI response (`NotFound`)
    type: str  # the envelope's `type`
    generic_message: str  # sent when the failure's own message must not reach the client


STATUS_TEXTS: Final = MappingProxyType(
    {
        400: StatusText("Bad Request", "BadRequestError", "Bad request"),
        401: StatusText("Unauthorized", "UnauthorizedError", "Authentication required"),
        403: StatusText("Forbidden", "ForbiddenError", "Permission denied"),
        404: StatusText("Not Found", "NotFoundError", "Not found"),
        405: StatusText("Method Not Allowed", "MethodNotAllowedError", "Method not allowed"),
        408: StatusText(
            "Request Timeout", "RequestTimeoutError", "The request did not arrive in time"
        ),
        409: StatusText("Conflict", "AlreadyExistsError", "Conflict"),
        413: StatusText("Payload Too Large", "PayloadTooLargeError", "Payload too large"),
        414: StatusText("URI Too Long", "URITooLongError", "URI too long"),
        415: StatusText(
            "Unsupported Media Type", "UnsupportedMediaTypeError", "Unsupported media type"
        ),
        417: StatusText("Expectation Failed", "ExpectationFailedError", "Expectation failed"),
        # 422's body is HTTPValidationError, not the envelope: the type appears only in logs.
        422: StatusText("Validation Error", "ValidationError", "Validation error"),
        429: StatusText(
            "Too Many Requests", "TooManyRequestsError", "Too many requests; retry later"
        ),
        431: StatusText(
            "Request Header Fields Too Large",
            "RequestHeaderFieldsTooLargeError",
            "Request header fields too large",
        ),
        # nginx's code for a client that went away, used by grpc-gateway for CANCELLED.
        499: StatusText(
            "Client Closed Request", "ClientClosedRequestError", "The client closed the request"
        ),
        500: StatusText("Internal Server Error", "InternalServerError", "Internal server error"),
        501: StatusText("Not Implemented", "NotImplementedError", "Not implemented"),
        502: StatusText("Bad Gateway", "BadGatewayError", "The backend's answer cannot be relayed"),
        503: StatusText(
            "Service Unavailable",
            "ServiceUnavailableError",
            "The backend service is unavailable; retry later",
        ),
        504: StatusText(
            "Gateway Timeout", "GatewayTimeoutError", "The backend did not answer in time"
        ),
    }
)


def status_text(status: int) -> StatusText:
    """The text of `status`; a status outside the vocabulary reads as 400's or 500's."""
    text = STATUS_TEXTS.get(status)
    if text is not None:
        return text
    return STATUS_TEXTS[400 if 400 <= status < 500 else 500]


def error_type_for(status: int) -> str:
    return status_text(status).type


def generic_message(status: int) -> str:
    return status_text(status).generic_message
