"""Compiled templates: the index pattern, and variable extraction per http.proto decoding."""

from __future__ import annotations

from gateway.routing.compiled import compile_template
from gateway.routing.request_path import split_path
from gateway.routing.template import parse_template


def test_pattern_has_decoded_literals_and_none_for_wildcards() -> None:
    compiled = compile_template(parse_template("/v1/caf%C3%A9/{id}/*/x:go"))
    assert compiled.pattern == ("v1", "café", None, None, "x")
    assert not compiled.deep
    assert compiled.verb == "go"


def test_deep_wildcard_is_not_part_of_the_fixed_pattern() -> None:
    compiled = compile_template(parse_template("/v1/{name=files/**}"))
    assert compiled.pattern == ("v1", "files")
    assert compiled.deep


def test_single_segment_value_is_fully_decoded_slash_included() -> None:
    compiled = compile_template(parse_template("/v1/items/{id}"))
    (view,) = split_path("/v1/items/a%2Fb%20c%252F")
    assert compiled.extract(view) == {"id": "a/b c%2F"}


def test_multi_segment_value_keeps_encoded_slashes() -> None:
    compiled = compile_template(parse_template("/v1/{name=shelves/*/books/*}"))
    (view,) = split_path("/v1/shelves/s%2F1/books/b%201")
    assert compiled.extract(view) == {"name": "shelves/s%2F1/books/b 1"}


def test_deep_variable_runs_to_the_end_of_the_path() -> None:
    compiled = compile_template(parse_template("/v1/{name=files/**}"))
    (view,) = split_path("/v1/files/a/b%2Fc/d")
    assert compiled.extract(view) == {"name": "files/a/b%2Fc/d"}
    (empty,) = split_path("/v1/files")
    assert compiled.extract(empty) == {"name": "files"}


def test_several_and_nested_variables() -> None:
    compiled = compile_template(parse_template("/v1/shelves/{book.shelf_id}/books/{book.id}"))
    (view,) = split_path("/v1/shelves/s1/books/caf%C3%A9")
    assert compiled.extract(view) == {"book.shelf_id": "s1", "book.id": "café"}


def test_variable_before_a_verb_uses_the_verb_view() -> None:
    compiled = compile_template(parse_template("/v1/{name=shelves/*}:publish"))
    with_verb, _ = split_path("/v1/shelves/a%3Ab:publish")
    assert compiled.extract(with_verb) == {"name": "shelves/a:b"}


def test_variable_bound_to_a_literal() -> None:
    compiled = compile_template(parse_template("/v1/{kind=books}/{id}"))
    assert compiled.pattern == ("v1", "books", None)
    (view,) = split_path("/v1/books/7")
    assert compiled.extract(view) == {"kind": "books", "id": "7"}
