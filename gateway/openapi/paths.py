"""OpenAPI path strings for parsed `google.api.http` templates."""

from __future__ import annotations

import re

from gateway.routing.template import PathTemplate, Segment, SegmentKind

_SEGMENT_REGEX = {SegmentKind.WILDCARD: "[^/]+", SegmentKind.DEEP_WILDCARD: ".*"}


def _segment_text(segment: Segment) -> str:
    return segment.literal if segment.kind is SegmentKind.LITERAL else segment.kind.value


def openapi_path(template: PathTemplate) -> str:
    """`/v1/{name=shelves/*}:publish` -> `/v1/{name}:publish`: one parameter per variable.

    A wildcard outside any variable matches but binds nothing; OpenAPI has no anonymous
    parameters, so it stays as written (`*`).
    """
    parts: list[str] = []
    by_start = {variable.start: variable for variable in template.variables}
    index = 0
    while index < len(template.segments):
        variable = by_start.get(index)
        if variable is None:
            parts.append(_segment_text(template.segments[index]))
            index += 1
        else:
            parts.append("{" + variable.name + "}")
            index = variable.end
    path = "/" + "/".join(parts)
    return path if template.verb is None else f"{path}:{template.verb}"


def multi_segment_patterns(template: PathTemplate) -> dict[str, str]:
    """Variable name -> regular expression of its value, for variables spanning segments."""
    patterns: dict[str, str] = {}
    for variable in template.variables:
        if variable.multi_segment:
            spanned = template.segments[variable.start : variable.end]
            body = "/".join(
                re.escape(s.literal) if s.kind is SegmentKind.LITERAL else _SEGMENT_REGEX[s.kind]
                for s in spanned
            )
            patterns[variable.name] = f"^{body}$"
    return patterns
