"""If-None-Match matching and Accept-Encoding negotiation of JSON answers."""

from __future__ import annotations

import pytest

from gateway.dispatch import accepts_gzip, etag_matches

TAG = '"v1"'


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ('"v1"', True),
        ("*", True),
        (' "v0" , "v1" ', True),
        ('"v0", "v2"', False),
        ('W/"v1"', True),  # weak comparison (RFC 9110 13.1.2): W/ is ignored
        ('"v0", W/"v1"', True),
        ('W/"v0"', False),
        ('w/"v1"', False),  # the weak indicator is case-sensitive
        ("W/v1", False),
        ('"v1,x", "v2"', False),  # a comma inside quotes does not split
        ("v1", False),  # unquoted is not an entity tag
        ("", False),
    ],
)
def test_etag_matches(header: str | None, matches: bool) -> None:
    assert etag_matches(header, TAG) is matches


def test_etag_with_comma_inside_quotes() -> None:
    assert etag_matches('"a", "b,c"', '"b,c"')


def test_a_weak_response_tag_matches_its_strong_form() -> None:
    assert etag_matches('"v1"', 'W/"v1"')
    assert etag_matches('W/"v1"', 'W/"v1"')


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0, br", False),
        ("br", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("x-gzip", True),
    ],
)
def test_accepts_gzip(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted
