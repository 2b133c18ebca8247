"""Parse `google.api.http` path templates (grammar in `google/api/http.proto`).

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

A variable is flattened into the segments it covers (as grpc-gateway's
`httprule` does): `/v1/{name=shelves/*}` is the segments `v1`, `shelves`, `*`
plus a variable `name` spanning segments 1..3. Besides the grammar this
enforces what the spec says in prose and what matching needs: `**` only last,
no nested or repeated variables, no empty or dot segments. `"/"` alone is
accepted as the root (zero segments), as grpc-gateway and Envoy do.
"""

from __future__ import annotations

import enum
import itertools
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from gateway.routing.errors import TemplateError

# RFC 3986 pchar minus the characters the template syntax uses itself
# (`*`, `=`, `:`, `{`, `}`, `/`); `%XX` escapes are decoded at parse time.
_LITERAL = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()+,;@]|%[0-9A-Fa-f]{2})+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SegmentKind(enum.Enum):
    LITERAL = "literal"
    WILDCARD = "*"
    DEEP_WILDCARD = "**"


@dataclass(frozen=True, slots=True)
class Segment:
    kind: SegmentKind
    # Percent-decoded text of a LITERAL segment; "" for wildcards.
    literal: str = ""


WILDCARD = Segment(SegmentKind.WILDCARD)
DEEP_WILDCARD = Segment(SegmentKind.DEEP_WILDCARD)


@dataclass(frozen=True, slots=True)
class Variable:
    """A `{field.path=...}` capture covering `segments[start:end]` of its template."""

    field_path: tuple[str, ...]
    start: int
    end: int
    # http.proto's encoding rule: anything but exactly one `*`/literal segment
    # is a multi-segment variable, whose value keeps `%2F` encoded.
    multi_segment: bool

    @property
    def name(self) -> str:
        """The dotted field path, as in the template and in query parameters."""
        return ".".join(self.field_path)


@dataclass(frozen=True, slots=True)
class PathTemplate:
    source: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str | None

    @property
    def ends_with_deep_wildcard(self) -> bool:
        return bool(self.segments) and self.segments[-1].kind is SegmentKind.DEEP_WILDCARD


def parse_template(source: str) -> PathTemplate:
    """Parse one path template; raise `TemplateError` saying where and why it is invalid."""
    return _Parser(source).parse()


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.segments: list[Segment] = []
        self.variables: list[Variable] = []

    def parse(self) -> PathTemplate:
        if not self.source.startswith("/"):
            raise self._error("a template starts with '/'")
        if self.source == "/":
            return PathTemplate(self.source, (), (), None)
        self.pos = 1
        self._segments(in_variable=False)
        verb = None
        if self._peek() == ":":
            self.pos += 1
            verb = self._literal("verb")
        if self.pos != len(self.source):
            raise self._error(f"unexpected {self.source[self.pos]!r}")
        self._check_deep_wildcard_last()
        self._check_field_paths()
        return PathTemplate(self.source, tuple(self.segments), tuple(self.variables), verb)

    def _segments(self, *, in_variable: bool) -> None:
        self._segment(in_variable=in_variable)
        while self._peek() == "/":
            self.pos += 1
            self._segment(in_variable=in_variable)

    def _segment(self, *, in_variable: bool) -> None:
        char = self._peek()
        if char == "*":
            deep = self.source.startswith("**", self.pos)
            self.pos += 2 if deep else 1
            if self._peek() not in ("", "/", ":", "}"):
                raise self._error("'*' and '**' must be whole segments")
            self.segments.append(DEEP_WILDCARD if deep else WILDCARD)
        elif char == "{":
            if in_variable:
                raise self._error("a variable cannot contain another variable")
            self._variable()
        else:
            self.segments.append(Segment(SegmentKind.LITERAL, self._literal("segment")))

    def _variable(self) -> None:
        self.pos += 1  # "{"
        field_path = [self._ident()]
        while self._peek() == ".":
            self.pos += 1
            field_path.append(self._ident())
        start = len(self.segments)
        if self._peek() == "=":
            self.pos += 1
            self._segments(in_variable=True)
        else:
            self.segments.append(WILDCARD)
        if self._peek() != "}":
            raise self._error("expected '}' closing the variable")
        self.pos += 1
        end = len(self.segments)
        multi = end - start != 1 or self.segments[start].kind is SegmentKind.DEEP_WILDCARD
        self.variables.append(Variable(tuple(field_path), start, end, multi))

    def _ident(self) -> str:
        found = _IDENT.match(self.source, self.pos)
        if found is None:
            raise self._error("expected a field name")
        self.pos = found.end()
        return found.group()

    def _literal(self, what: str) -> str:
        found = _LITERAL.match(self.source, self.pos)
        end = found.end() if found else self.pos
        if self.source.startswith("%", end):
            raise TemplateError(self.source, end, "invalid percent-encoding")
        if found is None:
            if self._peek() in ("", "/", ":", "}"):
                raise self._error(f"empty {what}")
            raise self._error(f"{self.source[self.pos]!r} is not allowed in a {what}")
        try:
            text = unquote_to_bytes(found.group()).decode("utf-8")
        except UnicodeDecodeError:
            raise self._error(f"{what} is not UTF-8 once percent-decoded") from None
        if _CONTROL.search(text):
            raise self._error(f"{what} contains a control character")
        if text in (".", ".."):
            raise self._error(f"{what} {text!r} is a dot segment")
        self.pos = found.end()
        return text

    def _check_deep_wildcard_last(self) -> None:
        if DEEP_WILDCARD in self.segments[:-1]:
            raise TemplateError(
                self.source, self.source.index("**"), "'**' must be the last segment"
            )

    def _check_field_paths(self) -> None:
        names = sorted(variable.field_path for variable in self.variables)
        for first, second in itertools.pairwise(names):
            if second[: len(first)] == first:
                raise TemplateError(
                    self.source,
                    0,
                    f"variables {'.'.join(first)!r} and {'.'.join(second)!r} bind the same field",
                )

    def _peek(self) -> str:
        return self.source[self.pos : self.pos + 1]

    def _error(self, reason: str) -> TemplateError:
        return TemplateError(self.source, self.pos, reason)
