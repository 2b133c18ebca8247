"""Path template parsing: the http.proto grammar, its prose rules, and clear errors."""

from __future__ import annotations

import pytest

from gateway.routing.errors import TemplateError
from gateway.routing.template import (
    DEEP_WILDCARD,
    WILDCARD,
    PathTemplate,
    Segment,
    SegmentKind,
    Variable,
    parse_template,
)


def lit(text: str) -> Segment:
    return Segment(SegmentKind.LITERAL, text)


def test_literals_and_single_segment_variables() -> None:
    template = parse_template("/v1/retrievers/{retriever_id}/executions/{execution_id}")
    assert template.segments == (
        lit("v1"),
        lit("retrievers"),
        WILDCARD,
        lit("executions"),
        WILDCARD,
    )
    assert template.variables == (
        Variable(("retriever_id",), 2, 3, multi_segment=False),
        Variable(("execution_id",), 4, 5, multi_segment=False),
    )
    assert template.verb is None
    assert template.source == "/v1/retrievers/{retriever_id}/executions/{execution_id}"


def test_variable_with_a_multi_segment_pattern_and_a_verb() -> None:
    template = parse_template("/v1/{name=shelves/*/books/*}:publish")
    assert template.segments == (lit("v1"), lit("shelves"), WILDCARD, lit("books"), WILDCARD)
    assert template.variables == (Variable(("name",), 1, 5, multi_segment=True),)
    assert template.verb == "publish"


@pytest.mark.parametrize(
    ("source", "multi_segment"),
    [
        ("/v1/{name}", False),
        ("/v1/{name=*}", False),
        # A variable bound to one literal segment is still single-segment.
        ("/v1/{name=shelves}", False),
        ("/v1/{name=**}", True),
        ("/v1/{name=a/*}", True),
    ],
)
def test_single_or_multi_segment_per_http_proto(source: str, multi_segment: bool) -> None:
    (variable,) = parse_template(source).variables
    assert variable.multi_segment is multi_segment


def test_bare_wildcards_and_deep_wildcard_last() -> None:
    template = parse_template("/v1/*/x/**")
    assert template.segments == (lit("v1"), WILDCARD, lit("x"), DEEP_WILDCARD)
    assert template.variables == ()
    assert template.ends_with_deep_wildcard


def test_deep_wildcard_may_precede_the_verb() -> None:
    template = parse_template("/v1/{name=files/**}:download")
    assert template.segments == (lit("v1"), lit("files"), DEEP_WILDCARD)
    assert template.verb == "download"
    assert template.variables == (Variable(("name",), 1, 3, multi_segment=True),)


def test_nested_field_paths() -> None:
    template = parse_template("/v1/shelves/{book.shelf_id}/books/{book.id}")
    assert [variable.field_path for variable in template.variables] == [
        ("book", "shelf_id"),
        ("book", "id"),
    ]
    assert [variable.name for variable in template.variables] == ["book.shelf_id", "book.id"]


def test_root_template_has_no_segments() -> None:
    assert parse_template("/") == PathTemplate("/", (), (), None)


def test_literals_are_percent_decoded_at_parse_time() -> None:
    template = parse_template("/v1/caf%C3%A9/a%3Ab:do%2Dit")
    assert template.segments == (lit("v1"), lit("café"), lit("a:b"))
    assert template.verb == "do-it"


def test_sub_delimiters_and_at_sign_are_literal_characters() -> None:
    assert parse_template("/v1/a!$&'()+,;@b").segments[1] == lit("a!$&'()+,;@b")


@pytest.mark.parametrize(
    ("source", "position", "reason"),
    [
        ("", 0, "a template starts with '/'"),
        ("v1/x", 0, "a template starts with '/'"),
        ("/v1/", 4, "empty segment"),
        ("/v1//x", 4, "empty segment"),
        ("/v1/x:", 6, "empty verb"),
        ("/v1/x:a:b", 7, "unexpected ':'"),
        ("/v1/**/x", 4, "'**' must be the last segment"),
        ("/v1/{name=**}/x", 10, "'**' must be the last segment"),
        ("/v1/*x", 5, "'*' and '**' must be whole segments"),
        ("/v1/***", 6, "'*' and '**' must be whole segments"),
        ("/v1/{a={b}}", 7, "a variable cannot contain another variable"),
        ("/v1/{a", 6, "expected '}' closing the variable"),
        ("/v1/{a=b/c", 10, "expected '}' closing the variable"),
        ("/v1/{}", 5, "expected a field name"),
        ("/v1/{1a}", 5, "expected a field name"),
        ("/v1/{a.}", 7, "expected a field name"),
        ("/v1/{a=}", 7, "empty segment"),
        ("/v1/{a}/{a}", 0, "variables 'a' and 'a' bind the same field"),
        ("/v1/{a}/{a.b}", 0, "variables 'a' and 'a.b' bind the same field"),
        ("/v1/%zz", 4, "invalid percent-encoding"),
        ("/v1/ab%2", 6, "invalid percent-encoding"),
        ("/v1/%FF", 4, "segment is not UTF-8 once percent-decoded"),
        ("/v1/%00", 4, "segment contains a control character"),
        ("/v1/..", 4, "segment '..' is a dot segment"),
        ("/v1/%2E", 4, "segment '.' is a dot segment"),
        ("/v1/a b", 5, "unexpected ' '"),
        ("/v1/{a=b c}", 8, "expected '}' closing the variable"),
        ("/v1/x:{a}", 6, "'{' is not allowed in a verb"),
        ("/v1/a=b", 5, "unexpected '='"),
    ],
)
def test_invalid_templates_say_where_and_why(source: str, position: int, reason: str) -> None:
    with pytest.raises(TemplateError) as raised:
        parse_template(source)
    assert (raised.value.position, raised.value.reason) == (position, reason)
    assert str(raised.value) == f"invalid path template {source!r} at offset {position}: {reason}"
