"""RFC 3339 and duration text, both directions."""

from __future__ import annotations

import pytest

from gateway.transcode.wkt_time import (
    format_duration,
    format_timestamp,
    parse_duration,
    parse_timestamp,
)


@pytest.mark.parametrize(
    ("text", "seconds", "nanos"),
    [
        ("1970-01-01T00:00:00Z", 0, 0),
        ("2026-11-28T20:38:15.5Z", 1795898295, 500_000_000),
        ("2026-11-28t20:38:15.000000001z", 1795898295, 1),
        ("2026-11-28T21:38:15+01:00", 1795898295, 0),
        ("2026-11-28T15:08:15.25-05:30", 1795898295, 250_000_000),
        ("2016-12-31T23:59:60Z", 1483228799, 0),  # a leap second reads as :59
        ("0001-01-01T00:00:00Z", -62135596800, 0),
    ],
)
def test_parse_timestamp(text: str, seconds: int, nanos: int) -> None:
    assert parse_timestamp(text) == (seconds, nanos)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T20:38:15",  # no offset
        "2026-11-28 20:38:15Z",
        "2026-13-01T00:00:00Z",
        "2026-11-28T20:38:15.1234567891Z",
        "9999-12-31T23:59:59-01:00",  # past year 9999 in UTC
        "",
    ],
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_timestamp(text)


def test_timestamp_round_trip() -> None:
    for seconds, nanos in ((1795898295, 123_000_000), (-5, 7), (253402300799, 999_999_999)):
        assert parse_timestamp(format_timestamp(seconds, nanos)) == (seconds, nanos)


@pytest.mark.parametrize(
    ("text", "seconds", "nanos"),
    [("1.5s", 1, 500_000_000), ("-0.25s", 0, -250_000_000), ("3s", 3, 0), ("-2s", -2, 0)],
)
def test_parse_duration(text: str, seconds: int, nanos: int) -> None:
    assert parse_duration(text) == (seconds, nanos)
    assert parse_duration(format_duration(seconds, nanos)) == (seconds, nanos)


@pytest.mark.parametrize("text", ["1.5", "1m", "s", "1.1234567891s", "315576000001s", "+1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_duration(text)


def test_format_duration_range() -> None:
    assert format_duration(315576000000, 0) == "315576000000s"
    with pytest.raises(ValueError, match="out of range"):
        format_duration(315576000001, 0)
