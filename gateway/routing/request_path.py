"""Split, check and percent-decode a request path, before any route is consulted.

The order follows `google/api/http.proto`: the RAW path is split on `/` first,
then each segment is decoded, so a `%2F` never becomes a separator. Decoding
happens exactly once (`%252F` is the three characters `%2F`, never a slash).

Paths that could make routing, auth or a backend disagree about what was asked
(Envoy CVE-2019-9901, CVE-2021-29492) raise `BadPathError` whatever the routes are,
so that the answer does not depend on which routes exist (the app answers 400):
- a character outside RFC 3986 `pchar` (space, `\\`, `"`, non-ASCII, ...);
- invalid percent-encoding (`%zz`, `%4`), or bytes that are not UTF-8;
- a control character once decoded, `%00` included;
- an empty segment (`//`, a trailing `/`);
- a `.` or `..` segment, raw or encoded (`%2e%2E`);
- more than `PathLimits` allows (length, segment length, segment count).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

from gateway.routing.errors import BadPathError

# Anything but RFC 3986 `pchar` characters, '%' (checked apart) and '/'.
_BAD_CHARACTER = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@%/]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# http.proto: multi-segment variables decode everything "except %2F and %2f".
_ENCODED_SLASH = re.compile(r"(%2[Ff])")
_DOT_SEGMENTS = frozenset((".", ".."))


@dataclass(frozen=True, slots=True)
class PathLimits:
    """Upper bounds on the raw (still encoded) path, query string excluded."""

    max_length: int = 2048
    max_segment_length: int = 256
    max_segments: int = 32


DEFAULT_LIMITS = PathLimits()


class PathView(NamedTuple):
    """One reading of a request path: its segments, raw and decoded, and its verb.

    A named tuple, not a frozen dataclass: built per request, it is cheaper.
    """

    raw: tuple[str, ...]
    decoded: tuple[str, ...]
    # The decoded text after the last segment's last ':', or None when read without a verb.
    verb: str | None


def split_path(raw_path: str, limits: PathLimits = DEFAULT_LIMITS) -> tuple[PathView, ...]:
    """Check and split a raw request path (a query string after `?` is ignored).

    Return the readings to try, in order: when the last segment has a ':' with
    text on both sides, first the one with that text as the verb, then the one
    without a verb (so `{name}` still matches a name that contains ':').
    Raise `BadPathError` for an unsafe or malformed path.
    """
    path = raw_path.partition("?")[0]
    if path == "/":
        return (PathView((), (), None),)
    if len(path) > limits.max_length:
        raise BadPathError("the path is too long")
    if (
        not path.startswith("/")
        or "//" in path
        or path.endswith("/")
        or _BAD_CHARACTER.search(path)
        or ("%" in path and _BAD_ESCAPE.search(path))
    ):
        raise BadPathError(_diagnose(path))
    raw = tuple(path[1:].split("/"))
    if len(raw) > limits.max_segments:
        raise BadPathError("the path has too many segments")
    if len(path) > limits.max_segment_length and max(map(len, raw)) > limits.max_segment_length:
        raise BadPathError("a path segment is too long")
    decoded = tuple(map(decode_segment, raw)) if "%" in path else raw
    if not _DOT_SEGMENTS.isdisjoint(decoded):
        raise BadPathError("the path has a '.' or '..' segment")

    last = raw[-1]
    colon = last.rfind(":")
    if not 0 < colon < len(last) - 1:
        return (PathView(raw, decoded, None),)
    stem = last[:colon]
    decoded_stem = decode_segment(stem)
    if decoded_stem in _DOT_SEGMENTS:
        raise BadPathError("the path has a '.' or '..' segment")
    with_verb = PathView(
        (*raw[:-1], stem), (*decoded[:-1], decoded_stem), decode_segment(last[colon + 1 :])
    )
    return with_verb, PathView(raw, decoded, None)


def decode_segment(raw: str) -> str:
    """Fully percent-decode one already-validated segment (literals, single-segment values)."""
    if "%" not in raw:
        return raw
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadPathError("the path is not UTF-8 once percent-decoded") from None
    if _CONTROL.search(text):
        raise BadPathError("the path contains a control character")
    return text


def decode_multi_segment(raw: str) -> str:
    """Decode the raw text of a multi-segment variable, keeping `%2F`/`%2f` as they are."""
    if "%" not in raw:
        return raw
    return "".join(
        piece if index % 2 else decode_segment(piece)
        for index, piece in enumerate(_ENCODED_SLASH.split(raw))
    )


def _diagnose(path: str) -> str:
    """The reason a path failed the quick checks, found the slow way."""
    if not path.startswith("/"):
        return "the path must start with '/'"
    if "//" in path or path.endswith("/"):
        return "the path has an empty segment ('//' or a trailing '/')"
    if _BAD_ESCAPE.search(path):
        return "the path has invalid percent-encoding"
    return "the path has a character that must be percent-encoded"
