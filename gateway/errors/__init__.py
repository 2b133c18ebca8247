"""The gateway's one error model: every failure a request can meet, and its answer.

`table.FAILURES` is the only place that says, for each failure (a gateway exception
class, an aiohttp refusal, or a gRPC status code from the service), its HTTP status,
the envelope's `code` and client-safe message, extra headers (`Allow`, `Retry-After`)
and its OpenAPI text; the envelope's `type` follows from the status (`vocabulary`,
CONTRACT.md's table). Everything else reads the table:

- `gateway.middleware` answers any exception with `answer(...)`;
- `gateway.openapi` documents one response per status, with each entry's sample
  rendered as its example;
- `tests/gateway/errors/` walk it (every entry renders a valid envelope, is reachable,
  is documented, and every exception class the gateway raises has an entry).

Adding a failure is one `Failure` entry in `table.py` (and, for a new status, one line
in `vocabulary.py` plus CONTRACT.md's vocabulary).
"""

from gateway.errors.answer import Answer, answer, failure_for, from_grpc_error, render_exception
from gateway.errors.envelope import (
    FALLBACK_BODY,
    FALLBACK_STATUS,
    ApiError,
    RenderedError,
    render_error,
    render_validation_error,
)
from gateway.errors.model import Failure, Specifics
from gateway.errors.vocabulary import STATUS_TEXTS, error_type_for, generic_message

__all__ = [
    "FALLBACK_BODY",
    "FALLBACK_STATUS",
    "STATUS_TEXTS",
    "Answer",
    "ApiError",
    "Failure",
    "RenderedError",
    "Specifics",
    "answer",
    "error_type_for",
    "failure_for",
    "from_grpc_error",
    "generic_message",
    "render_error",
    "render_exception",
    "render_validation_error",
]
