"""Compile a parsed path template into the two things a lookup needs.

- `pattern`: per fixed segment, the decoded literal or `None` for a wildcard
  (the key `table.RouteTable` indexes by); `deep` when a final `**` follows.
- `extract`: the variables' values from a matched `PathView`, decoded as
  http.proto says: single-segment values fully, multi-segment values (`{x=a/*}`,
  `{x=**}`) with `%2F` kept encoded and their segments joined by `/`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.routing.request_path import PathView, decode_multi_segment
from gateway.routing.template import PathTemplate, SegmentKind


@dataclass(frozen=True, slots=True)
class _Capture:
    name: str
    start: int
    # Exclusive end; None when the variable runs to the end of the path (`**`).
    end: int | None
    multi_segment: bool


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    template: PathTemplate
    pattern: tuple[str | None, ...]
    deep: bool
    verb: str | None
    captures: tuple[_Capture, ...]

    def extract(self, view: PathView) -> dict[str, str]:
        """Variable values by dotted field path, for a view this template matches."""
        values: dict[str, str] = {}
        for capture in self.captures:
            if capture.multi_segment:
                raw = "/".join(view.raw[capture.start : capture.end])
                values[capture.name] = decode_multi_segment(raw)
            else:
                values[capture.name] = view.decoded[capture.start]
        return values


def compile_template(template: PathTemplate) -> CompiledTemplate:
    deep = template.ends_with_deep_wildcard
    fixed = template.segments[:-1] if deep else template.segments
    pattern = tuple(
        segment.literal if segment.kind is SegmentKind.LITERAL else None for segment in fixed
    )
    captures = tuple(
        _Capture(
            variable.name,
            variable.start,
            None if deep and variable.end == len(template.segments) else variable.end,
            variable.multi_segment,
        )
        for variable in template.variables
    )
    return CompiledTemplate(template, pattern, deep, template.verb, captures)
