"""Hypothesis properties of the path-template parser and the request-path normaliser.

Whatever the input, each answers with a result or its own error (TemplateError,
BadPathError), never another exception; and what they accept reads back exactly.
"""

from __future__ import annotations

import string
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.routing.compiled import compile_template
from gateway.routing.errors import BadPathError, TemplateError
from gateway.routing.request_path import DEFAULT_LIMITS, split_path
from gateway.routing.template import SegmentKind, parse_template

# Bounded and reproducible: a few hundred cases per property, the same on every run.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_TEMPLATE_ALPHABET = string.ascii_letters + string.digits + "/{}=*:.%_-~!$&'()+,;@ \x00é"
_PATH_ALPHABET = string.ascii_letters + string.digits + "/%.:-_~!$&'()*+,;=@ ?#\\\"\x00\x7fé"
_IDENT = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
_LITERAL = st.from_regex(r"[A-Za-z0-9\-_~][A-Za-z0-9\-._~]{0,8}", fullmatch=True).filter(
    lambda text: text not in (".", "..")
)
# Single-segment values: any text but the dot segments, control characters, and `/`
# (a `%2F` in a single-segment value is decoded, so it is tested apart below).
_VALUE = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    min_size=1,
    max_size=12,
).filter(lambda text: text not in (".", ".."))


def _parses_or_raises_template_error(source: str) -> None:
    failure: TemplateError | None = None
    try:
        template = parse_template(source)
    except TemplateError as error:
        failure = error
    if failure is not None:
        assert 0 <= failure.position <= len(source)
        return
    assert template.source == source
    for variable in template.variables:
        assert 0 <= variable.start < variable.end <= len(template.segments)


@FUZZ
@given(st.text(_TEMPLATE_ALPHABET, max_size=40))
def test_any_template_text_parses_or_raises_template_error(source: str) -> None:
    _parses_or_raises_template_error(source)


@FUZZ
@given(st.text(_TEMPLATE_ALPHABET, max_size=40).map(lambda text: "/" + text))
def test_any_slash_template_parses_or_raises_template_error(source: str) -> None:
    _parses_or_raises_template_error(source)


@st.composite
def _templates(draw: st.DrawFn) -> tuple[str, list[str | None], str | None]:
    """A valid template of literals and single-segment `{v<i>}` variables (None), maybe a verb."""
    shape = draw(st.lists(st.one_of(_LITERAL, st.none()), min_size=1, max_size=6))
    verb = draw(st.one_of(st.none(), _IDENT))
    parts = [f"{{v{index}}}" if part is None else part for index, part in enumerate(shape)]
    return "/" + "/".join(parts) + (f":{verb}" if verb else ""), shape, verb


@FUZZ
@given(_templates(), st.data())
def test_a_generated_template_captures_any_percent_encoded_values(
    generated: tuple[str, list[str | None], str | None], data: st.DataObject
) -> None:
    source, shape, verb = generated
    template = parse_template(source)
    assert template.verb == verb
    assert [
        s.literal if s.kind is SegmentKind.LITERAL else None for s in template.segments
    ] == shape
    compiled = compile_template(template)
    values = {f"v{index}": data.draw(_VALUE) for index, part in enumerate(shape) if part is None}
    raw = [
        quote(values[f"v{i}"], safe="") if part is None else part for i, part in enumerate(shape)
    ]
    path = "/" + "/".join(raw) + (f":{verb}" if verb else "")
    views = split_path(path)
    view = next(v for v in views if v.verb == verb)
    assert list(view.decoded) == [values.get(f"v{i}", part) for i, part in enumerate(shape)]
    assert compiled.extract(view) == values


@FUZZ
@given(st.text(_PATH_ALPHABET, max_size=60))
def test_any_request_path_splits_or_raises_bad_path_error(path: str) -> None:
    failure: BadPathError | None = None
    try:
        views = split_path(path)
    except BadPathError as error:
        failure = error
    if failure is not None:
        assert failure.reason
        assert len(path) < 4 or path not in failure.reason  # never echoes the path
        return
    for view in views:
        assert len(view.raw) == len(view.decoded) <= DEFAULT_LIMITS.max_segments
        for segment in view.decoded:
            assert segment not in (".", "..")
            assert not any(ord(char) < 0x20 or ord(char) == 0x7F for char in segment)
        assert all(view.raw) or view.raw == ()
    assert "/".join(views[-1].raw) == path.partition("?")[0][1:]


@FUZZ
@given(st.lists(_VALUE, min_size=1, max_size=8))
def test_percent_encoded_segments_decode_back_exactly(segments: list[str]) -> None:
    path = "/" + "/".join(quote(segment, safe="") for segment in segments)
    if len(path) > DEFAULT_LIMITS.max_length or any(
        len(quote(s, safe="")) > DEFAULT_LIMITS.max_segment_length for s in segments
    ):
        with pytest.raises(BadPathError):
            split_path(path)
        return
    views = split_path(path)
    assert list(views[-1].decoded) == segments  # the verbless reading: every segment whole


@FUZZ
@given(st.lists(_VALUE, min_size=1, max_size=4))
def test_an_encoded_slash_never_becomes_a_separator(parts: list[str]) -> None:
    segment = "%2F".join(quote(part, safe="") for part in parts)
    assume(len(segment) <= DEFAULT_LIMITS.max_segment_length)
    (view,) = [v for v in split_path(f"/v1/{segment}") if v.verb is None]
    assert len(view.raw) == 2
    assert view.decoded[1] == "/".join(parts)
