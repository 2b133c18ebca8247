"""The few exceptions of the transcoder, each raised in exactly one situation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One entry of a 422 `HTTPValidationError.detail` (FastAPI/pydantic style).

    `loc` starts with where the value came from ("path", "query" or "body"), then the
    field path (names and list indexes). `type` is a pydantic-style error type such as
    `bool_parsing`, `int_parsing`, `extra_forbidden`, `enum` or `missing`.
    """

    loc: tuple[str | int, ...]
    msg: str
    type: str


class RequestValidationError(Exception):
    """A path, query or body value does not parse, a name is unknown, or one is missing (422)."""

    def __init__(self, errors: Sequence[ValidationIssue]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))
        self.errors: tuple[ValidationIssue, ...] = tuple(errors)


class InvalidJsonError(Exception):
    """The request body is not valid JSON (400, code `invalid_json`)."""


class UnsupportedMediaTypeError(Exception):
    """A request body was sent with a content type other than JSON (415)."""

    def __init__(self, content_type: str) -> None:
        super().__init__(f"Unsupported content type {content_type!r}; send application/json")
        self.content_type = content_type


class RenderError(Exception):
    """A response message holds a value JSON cannot express (e.g. a Timestamp beyond year 9999).

    The app answers it as a 500 with a generic message; it signals a backend bug.
    """
