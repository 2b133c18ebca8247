"""Request path splitting: split raw first, decode once, reject what could confuse routing."""

from __future__ import annotations

import pytest

from gateway.routing.errors import BadPathError
from gateway.routing.request_path import (
    PathLimits,
    PathView,
    decode_multi_segment,
    decode_segment,
    split_path,
)


def test_plain_path_is_one_view_without_verb() -> None:
    assert split_path("/v1/retrievers/ret_1/executions/exec_2") == (
        PathView(
            ("v1", "retrievers", "ret_1", "executions", "exec_2"),
            ("v1", "retrievers", "ret_1", "executions", "exec_2"),
            None,
        ),
    )


def test_query_string_is_ignored() -> None:
    (view,) = split_path("/v1/a?b=/c/../d&e=%00")
    assert view.decoded == ("v1", "a")


def test_root() -> None:
    assert split_path("/") == (PathView((), (), None),)


def test_split_happens_before_decoding() -> None:
    (view,) = split_path("/v1/a%2Fb/c")
    assert view.raw == ("v1", "a%2Fb", "c")
    assert view.decoded == ("v1", "a/b", "c")


def test_values_are_decoded_exactly_once() -> None:
    (view,) = split_path("/v1/a%252Fb/%2541")
    assert view.decoded == ("v1", "a%2Fb", "%41")


def test_utf8_and_reserved_characters_decode() -> None:
    (view,) = split_path("/v1/caf%C3%A9/%3F%23%20/a+b")
    # '+' is a literal plus in a path, not a space (that is form encoding).
    assert view.decoded == ("v1", "café", "?# ", "a+b")


def test_last_segment_with_colon_gives_a_verb_view_first() -> None:
    with_verb, without = split_path("/v1/shelves/s1:publish")
    assert with_verb == PathView(("v1", "shelves", "s1"), ("v1", "shelves", "s1"), "publish")
    assert without == PathView(
        ("v1", "shelves", "s1:publish"), ("v1", "shelves", "s1:publish"), None
    )


def test_verb_splits_at_the_last_colon_and_decodes_both_sides() -> None:
    with_verb, _ = split_path("/v1/a:b%20c:do%2Dit")
    assert with_verb.raw[-1] == "a:b%20c"
    assert with_verb.decoded[-1] == "a:b c"
    assert with_verb.verb == "do-it"


def test_encoded_colon_is_not_a_verb_separator() -> None:
    assert split_path("/v1/s1%3Apublish") == (
        PathView(("v1", "s1%3Apublish"), ("v1", "s1:publish"), None),
    )


@pytest.mark.parametrize("path", ["/v1/:publish", "/v1/s1:", "/v1/:"])
def test_colon_without_text_on_both_sides_is_no_verb(path: str) -> None:
    (view,) = split_path(path)
    assert view.verb is None
    assert view.raw[-1] == path.rsplit("/", 1)[1]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "the path must start with '/'"),
        ("v1/a", "the path must start with '/'"),
        ("//", "the path has an empty segment ('//' or a trailing '/')"),
        ("/v1//a", "the path has an empty segment ('//' or a trailing '/')"),
        ("/v1/a/", "the path has an empty segment ('//' or a trailing '/')"),
        ("/v1/%zz", "the path has invalid percent-encoding"),
        ("/v1/a%2", "the path has invalid percent-encoding"),
        ("/v1/%", "the path has invalid percent-encoding"),
        ("/v1/%FF", "the path is not UTF-8 once percent-decoded"),
        ("/v1/%C3", "the path is not UTF-8 once percent-decoded"),
        ("/v1/a%00b", "the path contains a control character"),
        ("/v1/a%0Ab", "the path contains a control character"),
        ("/v1/a%7F", "the path contains a control character"),
        ("/v1/.", "the path has a '.' or '..' segment"),
        ("/v1/../admin", "the path has a '.' or '..' segment"),
        ("/v1/%2e%2E/admin", "the path has a '.' or '..' segment"),
        ("/v1/%2E", "the path has a '.' or '..' segment"),
        ("/v1/..:publish", "the path has a '.' or '..' segment"),
        ("/v1/a b", "the path has a character that must be percent-encoded"),
        ("/v1/a\\..\\b", "the path has a character that must be percent-encoded"),
        ("/v1/caf\u00e9", "the path has a character that must be percent-encoded"),
        ("/v1/a\x00b", "the path has a character that must be percent-encoded"),
        ("/v1/a#b", "the path has a character that must be percent-encoded"),
        ('/v1/"a"', "the path has a character that must be percent-encoded"),
        ("/v1/{a}", "the path has a character that must be percent-encoded"),
    ],
)
def test_unsafe_or_malformed_paths_are_rejected(path: str, reason: str) -> None:
    with pytest.raises(BadPathError) as raised:
        split_path(path)
    assert raised.value.reason == reason


def test_dotted_names_that_are_not_dot_segments_are_fine() -> None:
    (view,) = split_path("/v1/.hidden/a..b/...")
    assert view.decoded == ("v1", ".hidden", "a..b", "...")


def test_limits() -> None:
    limits = PathLimits(max_length=20, max_segment_length=5, max_segments=3)
    assert split_path("/aaaaa/bbbbb/ccccc", limits)[0].raw == ("aaaaa", "bbbbb", "ccccc")
    with pytest.raises(BadPathError, match="too long"):
        split_path("/aaaaa/bbbbb/ccccc/dd", limits)
    with pytest.raises(BadPathError, match="a path segment is too long"):
        split_path("/aaaaaa", limits)
    with pytest.raises(BadPathError, match="too many segments"):
        split_path("/a/b/c/d", limits)


def test_default_limits_bound_segment_length() -> None:
    split_path("/" + "a" * 256)
    with pytest.raises(BadPathError, match="a path segment is too long"):
        split_path("/" + "a" * 257)


def test_bad_path_reason_never_echoes_the_path() -> None:
    with pytest.raises(BadPathError) as raised:
        split_path("/v1/<script>")
    assert "script" not in str(raised.value)


def test_decode_segment() -> None:
    assert decode_segment("plain") == "plain"
    assert decode_segment("a%2Fb%20c") == "a/b c"


def test_decode_multi_segment_keeps_encoded_slashes_only() -> None:
    assert decode_multi_segment("a/b") == "a/b"
    assert decode_multi_segment("a%2Fb/c%2fd/e%20f%3A") == "a%2Fb/c%2fd/e f:"
    # %25 decodes to '%': the value is the text "%2F", decoded once, not a slash.
    assert decode_multi_segment("a%252Fb") == "a%2Fb"
