"""`Failure`: one row of the error table, everything the gateway says about one way to fail."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.transcode.exceptions import ValidationIssue

E = TypeVar("E", bound=BaseException)


@dataclass(frozen=True, slots=True)
class Specifics:
    """What one occurrence adds to its failure's fixed answer; None keeps the entry's value."""

    message: str | None = None
    code: str | None = None
    details: Mapping[str, object] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Only for the entry whose status is the exception's own (aiohttp's other refusals).
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure(Generic[E]):
    """One failure: which exception it answers, and the answer, headers and OpenAPI text.

    `cause` (and `applies`, when one class stands for several failures) select the
    entry; the first entry of the table that matches answers. `message` is client-safe:
    a fixed sentence, or the generic message of the status where the detail must not leak.
    """

    name: str  # unique; the OpenAPI example's key
    cause: type[E]
    applies: Callable[[E], bool] | None = None
    status: int
    code: str | None
    message: str
    # OpenAPI: when the gateway answers it (one sentence, Markdown).
    when: str
    # Extra response headers it carries, documented in its OpenAPI response.
    headers: tuple[str, ...] = ()
    # The gateway's own `Retry-After` (config `retry_after_s`) unless the service sent one.
    retry_after: bool = False
    # Only an operation with a request body can produce it (no GET lists it).
    needs_body: bool = False
    # The parts an occurrence decides (message from the exception, details, headers).
    specifics: Callable[[E], Specifics] | None = None
    # For 422: the issues listed in the HTTPValidationError body instead of an envelope.
    issues: Callable[[E], Sequence[ValidationIssue]] | None = None
    # An occurrence, rendered as the OpenAPI example and walked by the tests.
    sample: Callable[[], E]
