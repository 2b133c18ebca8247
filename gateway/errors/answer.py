"""Answer an exception by the table: the entry that matches, its rendered body and headers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import grpc

from gateway.errors.envelope import ApiError, RenderedError, render_error, render_validation_error
from gateway.errors.grpc_status import rpc_error
from gateway.errors.model import Failure, Specifics
from gateway.errors.table import FAILURES

_NO_SPECIFICS = Specifics()


class Answer(NamedTuple):
    failure: Failure[Any]
    rendered: RenderedError
    headers: dict[str, str]


# Exception class -> the entries whose cause it is, in table order: the lookup then only
# runs their `applies` tests, not one isinstance per entry (filled as classes are met).
_CANDIDATES: dict[type[BaseException], tuple[Failure[Any], ...]] = {}


def _candidates(error_class: type[BaseException]) -> tuple[Failure[Any], ...]:
    found = _CANDIDATES.get(error_class)
    if found is None:
        found = tuple(failure for failure in FAILURES if issubclass(error_class, failure.cause))
        _CANDIDATES[error_class] = found
    return found


def failure_for(error: BaseException) -> Failure[Any]:
    """The first entry of the table that matches `error` (the last one matches anything)."""
    for failure in _candidates(type(error)):
        if failure.applies is None or failure.applies(error):
            return failure
    return FAILURES[-1]


def api_error(failure: Failure[Any], error: BaseException) -> tuple[ApiError, dict[str, str]]:
    """What the envelope says about `error` as `failure`, and the headers it carries."""
    specifics = failure.specifics(error) if failure.specifics is not None else _NO_SPECIFICS
    status = specifics.status if specifics.status is not None else failure.status
    message = specifics.message if specifics.message is not None else failure.message
    code = specifics.code if specifics.code is not None else failure.code
    return ApiError(status, message, code, specifics.details), dict(specifics.headers)


def answer(error: BaseException, retry_after_s: int) -> Answer:
    """The answer to `error`: 422's validation body or the envelope, and its headers."""
    failure = failure_for(error)
    if failure.issues is not None:
        return Answer(failure, render_validation_error(failure.issues(error)), {})
    envelope, headers = api_error(failure, error)
    if failure.retry_after:
        headers.setdefault("Retry-After", str(retry_after_s))
    return Answer(failure, render_error(envelope), headers)


def render_exception(error: BaseException) -> RenderedError:
    """The body answering `error` (without headers)."""
    return answer(error, 0).rendered


def from_grpc_error(
    code: grpc.StatusCode,
    message: str,
    trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
) -> ApiError:
    """The envelope's content for a gRPC failure (status by the table, code and details
    from the service's ErrorInfo, the message unless it may carry internals)."""
    error = rpc_error(code, message, trailing_metadata)
    return api_error(failure_for(error), error)[0]
